"""``results/index.html`` after two real runs, in headless Debian Chromium (issue 13):
both rows, every link resolves to its run's report, headers sort, no console errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from polish_runs import PolishRuns  # the polish_runs fixture: tests/conftest.py
from test_report_browser import CHROMIUM, _open, browser  # noqa: F401  (the headless Chromium fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium chromium-driver)"),
]


def test_index_lists_both_runs_links_resolve_and_sorts(browser: object, polish_runs: PolishRuns):
    index = polish_runs.results / "index.html"
    page, seen = _open(browser, index)
    try:
        table = page.locator("table#runs")
        headers = table.locator("thead th").all_inner_texts()
        assert headers == ["run", "kind", "strategy", "data set", "status", "ok", "failed", "infeasible",
                           "best score", "test accuracy", "duration", "date"]
        rows = table.locator("tbody tr")
        assert rows.count() == 2
        assert [rows.nth(i).locator("td").first.inner_text() for i in range(2)] == ["second", "first"]
        for i in range(2):
            cells = rows.nth(i).locator("td").all_inner_texts()
            assert cells[1:8] == ["search", "grid", "digits", "finished", "1", "0", "1"]
            assert cells[8].endswith(" val_accuracy")

        links = [page.evaluate("(a) => a.href", a) for a in table.locator("tbody a").element_handles()]
        assert len(links) == 2
        for link in links:
            target = Path(unquote(urlparse(link).path))
            assert target.is_file() and target.name == "report.html", link
        run_column = headers.index("run")
        table.locator("thead th").nth(run_column).click()
        assert [rows.nth(i).locator("td").first.inner_text() for i in range(2)] == ["first", "second"]

        page.locator("tbody a", has_text="first").click()
        page.wait_for_load_state("load")
        assert page.title() == "automnist report: first"
        assert page.locator("main section").count() > 3
        assert seen == {"console": [], "pageerror": [], "dialog": [],
                        "request": [index.as_uri(), links[1] if links[1].endswith("first/report.html") else links[0]]}
    finally:
        page.close()
