"""report: the sections of sweep, learning-rate range test and denoising runs, written
from real (tiny) runs on scikit-learn digits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from automnist.aggregate import denoising_table, sweep_table
from automnist.experiments.lr_find_curve import RULE
from automnist.report import write_report
from automnist.spec import parse_spec
from automnist.store import Store
from test_report import _Page

pytestmark = pytest.mark.slow

TINY = {"conv_layers": 1, "filters": 8, "kernel_size": 3, "padding": "same", "dense_layers": 1, "batch_size": 32}


def _num(cell: tuple[str, str | None]) -> float:
    text, key = cell
    return float(key) if key else math.nan


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chained sweep whose learning rates come from a range test, and a denoising comparison."""
    from automnist.experiments.denoise import compare_denoising
    from automnist.search import run_search

    root = tmp_path_factory.mktemp("kinds") / "results"
    sweep = parse_spec({
        "name": "sw", "data": {"dataset": "digits", "subset": 300},
        "params": {**TINY, "optimizer": {"choice": ["adam", "rmsprop"]}, "learning_rate": "from_lr_find",
                   "units": {"choice": [8, 16]}},
        "search": {"strategy": "sweep", "chain": True, "repeats": 2, "epochs": 2, "max_trials": 20},
    })
    run_search(sweep, results_dir=root, run_name="sw", progress=False)
    noisy = parse_spec({
        "name": "dn", "data": {"dataset": "digits", "subset": 300,
                               "noise": {"kind": "gaussian", "std": 0.4, "on": ["train", "test"]}},
        "denoise": {"filters": [8], "epochs": 3}, "params": {**TINY, "units": 16},
        "search": {"epochs": 2},
    })
    compare_denoising(noisy, results_dir=root, run_name="dn")
    with Store.at(root) as store:  # a sweep run stored by something that no longer parses
        store.create_run("broken", strategy="sweep", kind="sweep",
                         config={"params": {"units": {"bogus": 1}}, "search": {"strategy": "sweep"}})
        store.finish_run("broken")
    return root


def _report(results: Path, *runs: str) -> tuple[str, _Page]:
    with Store.at(results) as store:
        path = write_report(store, list(runs))
    html = path.read_text(encoding="utf-8")
    return html, _Page(html)


def test_sweep_report_has_panels_per_hyperparameter_and_the_summary_table(results: Path) -> None:
    html, page = _report(results, "sw")
    assert page.sections[:3] == ["summary", "sweep", "lr-used"]
    # the sweep's own analysis replaces the generic effect, significance and parallel sections
    assert not {"effects", "significance", "parallel"} & set(page.sections)
    assert {"leaderboard", "failures", "curves", "test"} <= set(page.sections)
    assert "Chained (search.chain: true): each hyperparameter" in html and "2 seeds per value" in html
    with Store.at(results) as store:
        expected = sweep_table(store.trials_frame("sw"), store.get_run("sw")["config"])
    table = page.table("hyperparameter", "values", "best")
    cols = table["columns"]
    assert [r[0][0] for r in table["rows"]] == expected["param"].tolist() == ["optimizer", "units"]
    for row, (_, want) in zip(table["rows"], expected.iterrows()):
        cell = dict(zip(cols, row))
        assert cell["best"][0] == want["best"] and cell["runner-up"][0] == want["runner_up"]
        assert _num(cell["margin"]) == pytest.approx(want["margin"])
        assert _num(cell["best mean val_accuracy"]) == pytest.approx(want["best_mean"])
        assert cell["p-value"][0] == "–" if math.isnan(want["p_value"]) else _num(cell["p-value"]) == pytest.approx(
            want["p_value"])
    # one figure of (accuracy, loss) panels per hyperparameter, then the per-value bars
    assert 'alt="validation accuracy and loss per epoch for each value of optimizer"' in html
    assert 'alt="validation accuracy and loss per epoch for each value of units"' in html
    assert 'alt="final val_accuracy per value"' in html
    every = page.table("hyperparameter", "value", "baseline")
    assert [(r[0][0], r[1][0]) for r in every["rows"]] == [("optimizer", "adam"), ("optimizer", "rmsprop"),
                                                          ("units", "8"), ("units", "16")]


def test_sweep_report_shows_the_learning_rates_from_the_range_test(results: Path) -> None:
    html, page = _report(results, "sw")
    with Store.at(results) as store:
        note = store.get_run("sw")["config"]["lr_find"]
    used = page.table("optimizer", "learning_rate", "lr_find run")
    rows = {r[0][0]: r for r in used["rows"]}
    assert set(rows) == {"adam", "rmsprop"}
    for opt, row in rows.items():
        assert _num(row[1]) == pytest.approx(note["learning_rate"][opt])
        assert row[2][0] == "sw-lr_find" and row[3][0] == "True"
    assert 'alt="the range-test curves behind these learning rates"' in html


def test_lr_find_report_draws_one_curve_per_optimizer_with_its_suggestion(results: Path) -> None:
    html, page = _report(results, "sw-lr_find")
    assert page.sections == ["summary", "lr-find", "failures"]
    assert len(page.images) == 1 and 'alt="loss against learning rate per optimizer"' in html
    assert RULE in html and "<dt>Objective</dt><dd>none: a suggested learning rate per optimizer</dd>" in html
    with Store.at(results) as store:
        trials = store.trials_frame("sw-lr_find").set_index("trial_id")
    table = page.table("optimizer", "status", "suggested_lr")
    assert [r[0][0] for r in table["rows"]] == ["adam", "rmsprop"]
    for row in table["rows"]:
        assert row[1][0] == "ok"
        assert _num(row[2]) == pytest.approx(trials.loc[row[0][0], "suggested_lr"])
        assert 1e-6 <= _num(row[2]) <= 100


def test_denoise_report_compares_clean_noisy_and_denoised(results: Path) -> None:
    html, page = _report(results, "dn")
    assert page.sections[:2] == ["summary", "denoise"]
    assert "<dt>Noise</dt><dd>gaussian, std 0.4, on train+test images</dd>" in html
    assert "filters 8, 3 epochs" in html
    with Store.at(results) as store:
        expected = denoising_table(store.trials_frame("dn"))
    table = page.table("condition", "test_accuracy")
    assert [r[0][0] for r in table["rows"]] == ["clean", "noisy", "denoised"]
    assert [_num(r[1]) for r in table["rows"]] == pytest.approx(expected["test_accuracy"].tolist())
    assert all(0.1 < _num(r[1]) <= 1.0 for r in table["rows"])
    assert 'alt="test accuracy on clean, noisy and denoised images"' in html


def test_a_run_whose_analysis_fails_still_gets_a_report(results: Path) -> None:
    html, page = _report(results, "broken")
    assert "sweep" in page.sections
    assert "Cannot show the sweep analysis: SpecError:" in html and "params.units" in html


def test_comparison_of_kinds_keeps_each_runs_sections(results: Path) -> None:
    _, page = _report(results, "sw", "dn")
    assert "run1-sweep" in page.sections and "run2-denoise" in page.sections


@pytest.mark.browser
def test_sweep_and_denoise_reports_in_a_real_browser(results: Path) -> None:
    """The new sections in headless Debian Chromium: no errors, every figure decodes, tables sort."""
    from test_report_browser import ARGS, CHROMIUM, _column, _open

    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with Store.at(results) as store:
        paths = [write_report(store, ["sw"]), write_report(store, ["dn"]), write_report(store, ["sw-lr_find"])]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for path in paths:
                page, seen = _open(browser, path)
                assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
                assert page.locator("img").count() >= 1
                if path.parent.name == "sw":
                    table = page.locator("#sweep table.sortable").first
                    header = table.locator("thead th", has_text="margin").first
                    header.click()
                    margins = [float(v) for v in _column(page, table, "margin")]
                    assert margins == sorted(margins) and header.get_attribute("aria-sort") == "ascending"
                assert seen["console"] == [] and seen["pageerror"] == []
                page.close()
        finally:
            browser.close()
