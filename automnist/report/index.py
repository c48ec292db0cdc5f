"""``results/index.html``: one row per run of a store, each linking to its report.

Numbers first (:func:`index_frame`, a DataFrame), then the page (:func:`write_index`,
the Jinja2 template ``templates/index.html.j2``), self-contained like the reports: the
same CSS and table sorter inline, the same Content-Security-Policy.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd

from automnist import __version__
from automnist.aggregate import run_summary
from automnist.report.describe import kind_of, objective_of
from automnist.report.render import _environment, content_policy
from automnist.runs import run_dir, write_text_whole

if TYPE_CHECKING:
    from automnist.store import Store

__all__ = ["INDEX_FILE", "index_frame", "write_index"]

#: The index page's name in a results directory.
INDEX_FILE = "index.html"

_COLUMNS = ["run", "kind", "strategy", "dataset", "status", "n_ok", "n_failed", "n_infeasible", "objective",
            "best_value", "test_accuracy", "duration_s", "started_at", "report"]


def index_frame(store: Store, results_dir: Path) -> pd.DataFrame:
    """One row per run, newest first: ``run``, ``kind``, ``strategy``, ``dataset``,
    ``status``, ``n_ok``, ``n_failed``, ``n_infeasible``, ``objective`` (its name),
    ``best_value`` (the best trial's, by the ranking rule), ``test_accuracy`` (the best
    trial's), ``duration_s`` (end minus start; so far while running), ``started_at`` (epoch
    seconds) and ``report`` (the report's path relative to ``results_dir``, "" if none)."""
    runs = store.runs_frame()
    if runs.empty:
        return pd.DataFrame(columns=_COLUMNS)
    trials = store.trials_frame(list(runs["run"]))
    rows = []
    for _, run in runs.iterrows():
        name = str(run["run"])
        info = store.require_run(name)
        objective, direction = objective_of(info)
        mine = trials[trials["run"] == name] if len(trials) else trials
        summary = _summary(run, mine, objective, direction)
        started, ended = float(run["started_at"]), run["ended_at"]
        duration = (float(ended) if pd.notna(ended) and ended else time.time()) - started
        report = Path(run_dir(".", name).name) / "report.html"
        rows.append({
            "run": name, "kind": kind_of(info), "strategy": run["strategy"] or "", "dataset": run["dataset"] or "",
            "status": run["status"], "n_ok": summary.get("n_ok", 0), "n_failed": summary.get("n_failed", 0),
            "n_infeasible": summary.get("n_infeasible", 0), "objective": objective,
            "best_value": summary.get("best_value", math.nan),
            "test_accuracy": summary.get("best_test_accuracy", math.nan),
            "duration_s": duration, "started_at": started,
            "report": report.as_posix() if (results_dir / report).is_file() else "",
        })
    return pd.DataFrame(rows, columns=_COLUMNS).sort_values("started_at", ascending=False, kind="stable")


def _summary(run: pd.Series, trials: pd.DataFrame, objective: str, direction: str) -> dict[str, Any]:
    """:func:`automnist.aggregate.run_summary`'s row for one run; counts only when its
    trials do not carry the objective (range tests, denoising comparisons)."""
    status = trials["status"].value_counts() if len(trials) else pd.Series(dtype=int)
    counts = {f"n_{s}": int(status.get(s, 0)) for s in ("ok", "failed", "infeasible")}
    if len(trials) == 0 or objective not in trials:
        return counts
    try:
        row = run_summary(run.to_frame().T, trials, objective, direction).iloc[0]
    except (KeyError, ValueError):
        return counts
    return {**counts, "best_value": row["best_value"], "best_test_accuracy": row["best_test_accuracy"]}


def _cells(row: pd.Series) -> list[tuple[str, Any]]:
    """(text, numeric sort key or None) per column of the page."""
    def num(value: Any, fmt: str) -> tuple[str, Any]:
        ok = value is not None and pd.notna(value)
        return (format(float(value), fmt) if ok else "-", float(value) if ok else "")

    date = _dt.datetime.fromtimestamp(float(row["started_at"]), tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    best = num(row["best_value"], ".4f")
    return [
        (row["kind"], None), (row["strategy"], None), (row["dataset"], None), (row["status"], None),
        (str(row["n_ok"]), row["n_ok"]), (str(row["n_failed"]), row["n_failed"]),
        (str(row["n_infeasible"]), row["n_infeasible"]),
        (f"{best[0]} {row['objective']}" if best[1] != "" else "-", best[1]),
        num(row["test_accuracy"], ".4f"), (_duration(row["duration_s"]), float(row["duration_s"])),
        (date, float(row["started_at"])),
    ]


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def write_index(store: Store, results_dir: str | Path) -> Path:
    """Write ``<results_dir>/index.html`` (one row per run of ``store``); returns its path."""
    from markupsafe import Markup

    results_dir = Path(results_dir)
    frame = index_frame(store, results_dir)
    env = _environment()
    script = env.get_template("_sorter.js.j2").render()
    rows = [{"run": r["run"], "href": quote(r["report"]) if r["report"] else "", "cells": _cells(r)}
            for _, r in frame.iterrows()]
    generated = _dt.datetime.now(tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    html = env.get_template("index.html.j2").render(
        title=f"automnist runs in {results_dir.resolve().name}", rows=rows, generated=generated,
        version=__version__, script=Markup(script), csp=content_policy(script),
    )
    out = results_dir / INDEX_FILE
    results_dir.mkdir(parents=True, exist_ok=True)
    write_text_whole(out, html)  # a browser reloading the page never sees half a file
    return out
