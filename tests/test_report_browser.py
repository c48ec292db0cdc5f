"""The report in a real browser: headless Debian Chromium driven by playwright.

Uses the system browser (/usr/bin/chromium, ``apt-get install chromium``), never a
downloaded one; skipped with a reason when it is missing.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from automnist.report import write_report
from automnist.runs import run_dir
from automnist.store import Store
from test_report import EVIL, add_run, grid_records, write_predictions

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Set before any page script runs: a script smuggled in through a run name would flip it.
ALERT_SPY = "window.__alerted = false; window.alert = function () { window.__alerted = true; };"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser") / "results"
    with Store.at(root) as store:
        add_run(store, "grid-run", grid_records())
        add_run(store, EVIL, grid_records())
        write_predictions(run_dir(root, "grid-run"), ["zero", "one", "two"])
        return {"grid": write_report(store, ["grid-run"]), "evil": write_report(store, [EVIL])}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def _open(browser: object, path: Path) -> tuple[object, dict[str, list[str]]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen: dict[str, list[str]] = {"console": [], "pageerror": [], "dialog": [], "request": []}
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: seen["pageerror"].append(str(e)))
    page.on("request", lambda r: seen["request"].append(r.url))

    def on_dialog(dialog: object) -> None:
        seen["dialog"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(ALERT_SPY)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, seen


def _column(page: object, table: object, name: str) -> list[str]:
    index = table.locator("thead th").all_inner_texts().index(name)
    return table.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()


def test_report_loads_cleanly_sorts_and_draws(browser: object, reports: dict[str, Path]) -> None:
    page, seen = _open(browser, reports["grid"])
    try:
        assert seen["console"] == [] and seen["pageerror"] == []
        assert all(url.startswith(("file://", "data:")) for url in seen["request"])  # nothing from the network
        board = page.locator("#leaderboard table.sortable")
        before = [float(v) for v in _column(page, board, "val_accuracy")]
        assert before == sorted(before, reverse=True)  # rank order: best first
        ids_before = _column(page, board, "trial_id")

        header = board.locator("thead th", has_text="val_accuracy").first
        header.click()
        after = [float(v) for v in _column(page, board, "val_accuracy")]
        assert after == sorted(before) and after != before
        assert header.get_attribute("aria-sort") == "ascending"
        assert _column(page, board, "trial_id") == ids_before[::-1]  # whole rows moved, not just cells

        header.click()
        assert [float(v) for v in _column(page, board, "val_accuracy")] == before
        assert header.get_attribute("aria-sort") == "descending"

        duration = board.locator("thead th", has_text="duration_s").first
        duration.click()  # numeric, not text, order: 10 < 20 < 30 < 40 < 50 ("10" < "5" as text)
        assert [float(v) for v in _column(page, board, "duration_s")] == [10.0, 20.0, 30.0, 40.0, 50.0]

        from PIL import Image

        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("L"), dtype=float)
        assert shot.shape == (900, 1280)
        assert shot.std() > 10 and len(np.unique(shot)) > 20  # text and lines, not a blank page
        assert page.locator("img").count() == 12
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert seen["console"] == [] and seen["pageerror"] == []
    finally:
        page.close()


def test_script_in_a_run_name_renders_as_text(browser: object, reports: dict[str, Path]) -> None:
    page, seen = _open(browser, reports["evil"])
    try:
        assert EVIL in page.locator("h1").inner_text()
        assert EVIL in page.inner_text("body")
        assert "<img src=x onerror=alert(2)> | boom" in page.inner_text("#failures")
        assert page.evaluate("document.scripts.length") == 1  # only the table sorter
        assert page.evaluate("window.__alerted") is False
        assert seen["dialog"] == []
        assert seen["console"] == [] and seen["pageerror"] == []
    finally:
        page.close()
