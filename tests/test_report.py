"""report: the HTML report written from a small real store, and the text exports."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automnist import aggregate
from automnist.errors import StoreError
from automnist.records import TrialRecord
from automnist.report import export_markdown, export_table, write_report
from automnist.runs import run_dir
from automnist.store import Store

EVIL = "<script>alert(1)</script>"
EVIL_ERROR = "<img src=x onerror=alert(2)> | boom"
EVIL_CLASS = "<b>bold</b>"
SPEC_TEXT = "name: grid\n# is a<b & c?\nparams:\n  k: {choice: [3, 5, 7]}\n"
#          k  opt     fold scores (5 folds)
GRID = [(3, "adam", [0.90, 0.91, 0.92, 0.93, 0.94]), (3, "sgd", [0.80, 0.81, 0.82, 0.83, 0.84]),
        (5, "adam", [0.95, 0.96, 0.97, 0.98, 0.99]), (5, "sgd", [0.85, 0.86, 0.87, 0.88, 0.89]),
        (7, "adam", [0.70, 0.71, 0.72, 0.73, 0.74])]


def grid_records(folds: bool = True) -> list[TrialRecord]:
    records = []
    for i, (k, opt, scores) in enumerate(GRID):
        mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1))
        records.append(TrialRecord(
            trial_id=f"{i:04d}", number=i, params={"k": k, "opt": opt, "filters": [32, 64]}, status="ok",
            metrics={"val_accuracy": mean, "val_loss": 1 - mean, "accuracy": mean + 0.01, "loss": 0.1,
                     "test_accuracy": mean - 0.01, **({"val_accuracy_std": std} if folds else {})},
            folds=[{"fold": f, "val_accuracy": s, "val_loss": 1 - s} for f, s in enumerate(scores)] if folds else [],
            history=[{"fold": 0, "epoch": e, "metric": m, "value": v / e}
                     for e in (1, 2, 3) for m, v in (("loss", 1.0), ("val_loss", 1.2),
                                                     ("accuracy", 0.3), ("val_accuracy", 0.25))],
            duration_s=10.0 * (i + 1), n_params=1000 * k, seed=0, epochs=3, started_at=1.7e9, ended_at=1.7e9 + 5,
        ))
    records.append(TrialRecord(trial_id="0005", number=5, params={"k": 7, "opt": "sgd", "filters": [32, 64]},
                               status="failed", error=EVIL_ERROR, duration_s=1.0))
    return records


def add_run(store: Store, name: str, records: list[TrialRecord], strategy: str = "grid") -> None:
    store.create_run(name, spec_name="grid", spec_text=SPEC_TEXT, spec_hash="abc123", strategy=strategy,
                     dataset="digits", config={"objective": {"name": "val_accuracy", "direction": "max"},
                                               "search": {"strategy": strategy, "max_trials": 6, "epochs": 3,
                                                          "cv": 5}},
                     versions={"numpy": np.__version__})
    for record in records:
        store.add_trial(name, record)
    store.finish_run(name)


def write_predictions(directory: Path, class_names: list[str]) -> None:
    rng = np.random.default_rng(0)
    y_true = np.arange(30) % 3
    prob = rng.dirichlet(np.ones(3), 30).astype(np.float32)
    prob[np.arange(30)[:20], y_true[:20]] += 1.0
    prob /= prob.sum(axis=1, keepdims=True)
    pred = prob.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    images = rng.random((30, 8, 8, 1)).astype(np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "predictions.npz", y_true=y_true, y_prob=prob,
                        class_names=np.asarray(class_names), mis_images=images[wrong], mis_true=y_true[wrong],
                        mis_pred=pred[wrong], sample_images=images[:6], sample_labels=y_true[:6],
                        trial_id=np.asarray("0002"))


class _Page(HTMLParser):
    """Tables (header texts, rows of (text, data-sort)), section ids, img sources, script texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.sections: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.meta: dict[str, str] = {}
        self.links: list[str] = []
        self._cell: list | None = None
        self._script: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"columns": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = [tag, "", a.get("data-sort")]
        elif tag == "section":
            self.sections.append(a["id"])
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "script":
            self._script = []
        elif tag == "meta" and "http-equiv" in a:
            self.meta[a["http-equiv"]] = a["content"]
        for key in ("href", "src"):
            if key in a:
                self.links.append(a[key])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            kind, text, key = self._cell
            if kind == "th":
                self.tables[-1]["columns"].append(text.strip())
                self.tables[-1]["rows"].pop() if self.tables[-1]["rows"] == [[]] else None
            else:
                self.tables[-1]["rows"][-1].append((text.strip(), key))
            self._cell = None
        elif tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1] += data
        if self._script is not None:
            self._script.append(data)

    def table(self, first_column: str, *more: str) -> dict:
        return next(t for t in self.tables if t["columns"][:1 + len(more)] == [first_column, *more])


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report") / "results"
    with Store.at(root) as store:
        add_run(store, "grid-run", grid_records())
        add_run(store, "other run", grid_records(folds=False)[:3], strategy="random")
        add_run(store, EVIL, grid_records())
        store.create_run("empty", strategy="random")
    write_predictions(run_dir(root, "grid-run"), ["zero", "one", "two"])
    write_predictions(run_dir(root, EVIL), ["zero", EVIL_CLASS, "two"])
    return root


@pytest.fixture(scope="module")
def single(results: Path) -> tuple[Path, str]:
    with Store.at(results) as store:
        path = write_report(store, ["grid-run"])
    return path, path.read_text(encoding="utf-8")


def test_single_run_report_default_path_and_sections(results: Path, single: tuple[Path, str]) -> None:
    path, html = single
    assert path == results / "grid-run" / "report.html"
    page = _Page(html)
    assert page.sections == ["summary", "leaderboard", "effects", "significance", "grid", "failures", "parallel",
                             "curves", "cost", "test"]
    assert "<h2>Grid: k × opt</h2>" in html


def test_report_is_self_contained(single: tuple[Path, str]) -> None:
    _, html = single
    page = _Page(html)
    assert page.links and all(link.startswith(("data:", "#")) for link in page.links)
    assert not re.search(r"https?://", html)
    # leaderboard, 2 effects, heatmap, parallel, curves, cost; confusion, ROC, PR, misclassified, samples
    assert len(page.images) == 12
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = page.meta["Content-Security-Policy"]
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_leaderboard_and_tables_hold_the_aggregate_numbers(results: Path, single: tuple[Path, str]) -> None:
    page = _Page(single[1])
    board = page.table("rank", "run", "trial_id")
    with Store.at(results) as store:
        expected = aggregate.leaderboard(store.trials_frame("grid-run"))
    assert [row[2][0] for row in board["rows"]] == expected["trial_id"].tolist() == ["0002", "0000", "0003",
                                                                                      "0001", "0004"]
    assert [row[0] for row in board["rows"]] == [(str(i), str(i)) for i in range(1, 6)]
    accuracy = board["columns"].index("val_accuracy")
    assert [float(row[accuracy][1]) for row in board["rows"]] == pytest.approx([0.97, 0.92, 0.87, 0.82, 0.72])
    compare = page.table("run", "best", "runner_up")
    row = dict(zip(compare["columns"], compare["rows"][0]))
    assert row["test"][0] == "paired t-test" and row["n"][0] == "5"
    significance = page.table("param", "n_groups")
    assert [r[0][0] for r in significance["rows"]] == ["k", "opt"]
    failures = page.table("run", "trial_id", "status", "error")
    assert failures["rows"][0][3][0] == EVIL_ERROR  # escaped in the file, the same text once parsed
    report = page.table("class", "precision")
    assert [r[0][0] for r in report["rows"]] == ["zero", "one", "two", "accuracy", "macro avg", "weighted avg"]


def test_summary_holds_run_facts_and_spec_text(single: tuple[Path, str]) -> None:
    _, html = single
    assert "<dt>Strategy</dt><dd>grid</dd>" in html
    assert "<dt>Best trial</dt><dd>0002</dd>" in html
    assert "<dt>Budget</dt><dd>max_trials=6, epochs=3, cv=5</dd>" in html
    assert "# is a&lt;b &amp; c?" in html  # the spec, escaped, in a <pre>
    assert "<dt>Trials</dt><dd>6 (ok 5, failed 1, infeasible 0)</dd>" in html


def test_user_strings_are_escaped(results: Path) -> None:
    with Store.at(results) as store:
        path = write_report(store, [EVIL])
    html = path.read_text(encoding="utf-8")
    assert path.parent == run_dir(results, EVIL) and "<" not in path.parent.name
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert EVIL_CLASS not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert html.count("<script") == 1


def test_comparison_report(results: Path) -> None:
    with Store.at(results) as store:
        path = write_report(store, ["grid-run", "other run"])
    # "other run" was named before the run-name rule: its folder name carries a hash of the name
    assert path == results / f"compare-grid-run-vs-{run_dir('.', 'other run').name}.html"
    assert run_dir(".", "other run").name.startswith("other_run-")
    page = _Page(path.read_text(encoding="utf-8"))
    assert page.sections[:3] == ["comparison", "shared-effects", "run1"]
    assert "run1-leaderboard" in page.sections and "run2-leaderboard" in page.sections
    assert "run2-grid" not in page.sections  # the random-search run has no heatmap
    summary = page.table("run", "strategy", "dataset")
    assert [r[0][0] for r in summary["rows"]] == ["grid-run", "other run"]
    shared = page.table("run", "param", "value")
    assert {r[1][0] for r in shared["rows"]} == {"k", "opt"}
    compare = page.table("run", "best", "runner_up")  # the first run's test (5 folds)
    other = [t for t in page.tables if t["columns"][:3] == ["run", "best", "runner_up"]][1]
    assert compare["rows"][0][6][0] == "paired t-test" and other["rows"][0][6][0] == "none (no folds)"
    assert "Not available: no " in path.read_text(encoding="utf-8")  # other run saved no predictions


def test_report_of_a_run_without_trials_and_custom_out(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "empty.html"
    with Store.at(results) as store:
        assert write_report(store, "empty", out=out) == out
    html = out.read_text(encoding="utf-8")
    assert "No hyperparameter took more than one value" in html and "(no rows)" in html


def test_report_argument_errors(results: Path) -> None:
    with Store.at(results) as store:
        with pytest.raises(StoreError, match="no run named 'nope'"):
            write_report(store, ["nope"])
        with pytest.raises(ValueError, match=r"runs: need at least one run name, got \[\]"):
            write_report(store, [])
        with pytest.raises(ValueError, match="runs: each run may appear once"):
            write_report(store, ["grid-run", "grid-run"])


# --------------------------------------------------------------------------- exports


def test_export_markdown_tables(results: Path) -> None:
    with Store.at(results) as store:
        text = export_markdown(store, "grid-run")
    lines = text.splitlines()
    assert lines[0] == "# automnist run grid-run"
    header = lines.index("## Leaderboard") + 2
    assert lines[header].startswith("| rank | run | trial_id | param_k | param_opt | param_filters | val_accuracy |")
    assert lines[header + 2].startswith("| 1 | grid-run | 0002 | 5 | adam | 32-64 | 0.97 |")
    assert "## Hyperparameter effects" in lines and "## Best vs runner-up" in lines
    # HTML escaped (a Markdown file is often rendered as HTML), pipes escaped so the table holds
    assert "&lt;img src=x onerror=alert(2)&gt; \\| boom" in text
    assert "<img" not in text and "<script" not in text


def test_export_table_csv_with_folds(results: Path) -> None:
    with Store.at(results) as store:
        frame = pd.read_csv(io.StringIO(export_table(store, "grid-run", fmt="csv")), dtype={"trial_id": str})
    assert frame.columns.tolist() == [
        "trial_id", "status", "param_k", "param_opt", "param_filters", "val_accuracy", "test_accuracy",
        "duration_s", "n_params", "error", *[f"fold_{i}_val_accuracy" for i in range(5)],
        "fold_mean_val_accuracy", "fold_std_val_accuracy"]
    assert frame["trial_id"].tolist() == ["0000", "0001", "0002", "0003", "0004", "0005"]
    first = frame.iloc[0]
    assert [first[f"fold_{i}_val_accuracy"] for i in range(5)] == GRID[0][2]
    assert first["fold_mean_val_accuracy"] == pytest.approx(0.92)
    assert first["fold_std_val_accuracy"] == pytest.approx(np.std(GRID[0][2], ddof=1))
    assert frame.iloc[5]["status"] == "failed" and frame.iloc[5]["error"] == EVIL_ERROR


def test_export_table_json_without_folds(results: Path) -> None:
    with Store.at(results) as store:
        rows = json.loads(export_table(store, "other run", fmt="json"))
        with pytest.raises(ValueError, match="fmt: must be 'csv' or 'json', got 'xlsx'"):
            export_table(store, "other run", fmt="xlsx")
    assert len(rows) == 3
    assert list(rows[0]) == ["trial_id", "status", "param_k", "param_opt", "param_filters", "val_accuracy",
                             "test_accuracy", "duration_s", "n_params", "error"]
    assert rows[0]["val_accuracy"] == pytest.approx(0.92) and rows[0]["error"] is None
