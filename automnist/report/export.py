"""Text exports of a run: its tables as Markdown, one row per trial as CSV or JSON."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from automnist.aggregate import param_columns
from automnist.report.blocks import cell
from automnist.report.describe import RunView, best_row, ensure_columns, objective_of, run_tables

if TYPE_CHECKING:
    from automnist.store import Store

__all__ = ["export_markdown", "export_table"]


def _md(value: Any) -> str:
    """Text safe in Markdown that may be rendered as HTML: ``<``, ``>`` and ``&``
    become entities (a run name or an error text holding ``<script>`` stays text), line
    breaks become spaces."""
    return html.escape(str(value), quote=False).replace("\r", " ").replace("\n", " ")


def _markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (HTML, pipes and newlines in cells escaped)."""

    def text(value: Any) -> str:
        return _md(cell(value)[0]).replace("|", "\\|")

    header = [text(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(text(v) for v in row) + " |" for row in frame.itertuples(index=False, name=None)]
    return "\n".join(lines)


def export_markdown(store: Store, run: str) -> str:
    """A run's summary, leaderboard, effect and significance tables as Markdown.

    Raises
    ------
    StoreError
        If the run is not in the store.
    """
    info = store.require_run(run)
    objective, direction = objective_of(info)
    view = RunView(run, info, objective, direction,
                   ensure_columns(store.trials_frame(run), objective), store.folds_frame(run),
                   pd.DataFrame())
    run_tables(view)
    counts = view.trials["status"].value_counts()
    best = best_row(view)
    parts = [
        f"# automnist run {_md(run)}",
        "",
        f"- data set: {_md(info.get('dataset', ''))}; strategy: {_md(info.get('strategy', ''))}; "
        f"objective: {_md(objective)} ({_md(direction)})",
        f"- trials: {len(view.trials)} (ok {int(counts.get('ok', 0))}, failed {int(counts.get('failed', 0))}, "
        f"infeasible {int(counts.get('infeasible', 0))})",
    ]
    if best is not None:
        parts.append(f"- best: trial {_md(best['trial_id'])}, {_md(objective)} = {_md(cell(best[objective])[0])}")
    parts += ["", "## Leaderboard", "", _markdown_table(view.tables["leaderboard"])]
    if len(view.tables["effects"]):
        parts += ["", "## Hyperparameter effects", "", _markdown_table(view.tables["effects"])]
    if len(view.tables["significance"]):
        parts += ["", "## Does each hyperparameter matter? (Kruskal-Wallis)", "",
                  _markdown_table(view.tables["significance"])]
    parts += ["", "## Best vs runner-up", "", _markdown_table(view.tables["compare_best"])]
    if len(view.tables["failures"]):
        parts += ["", "## Failed and infeasible trials", "", _markdown_table(view.tables["failures"])]
    return "\n".join(parts) + "\n"


def export_table(store: Store, run: str, fmt: str = "csv") -> str:
    """One row per trial of ``run`` as CSV or JSON (records).

    Columns: ``trial_id, status, param_<name>..., val_accuracy`` (and the run's
    objective when it is another metric), ``test_accuracy, duration_s, n_params,
    error``; when CV was used, ``fold_<i>_val_accuracy`` for every fold ``i`` and
    ``fold_mean_val_accuracy``, ``fold_std_val_accuracy`` (sample std, ``ddof=1``).

    Raises
    ------
    StoreError
        If the run is not in the store.
    ValueError
        If ``fmt`` is not ``"csv"`` or ``"json"``.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"fmt: must be 'csv' or 'json', got {fmt!r}")
    info = store.require_run(run)
    objective, _ = objective_of(info)
    trials = ensure_columns(store.trials_frame(run), "val_accuracy")
    if objective not in trials.columns:
        trials[objective] = np.nan
    metrics = ["val_accuracy"] + ([objective] if objective != "val_accuracy" else [])
    columns = ["trial_id", "status", *param_columns(trials), *metrics,
               "test_accuracy", "duration_s", "n_params", "error"]
    table = trials[columns].copy()
    folds = store.folds_frame(run)
    if not folds.empty and "val_accuracy" in folds.columns:
        wide = folds.pivot_table(index="trial_id", columns="fold", values="val_accuracy", aggfunc="first")
        wide = wide.reindex(columns=sorted(wide.columns))
        scores = wide.copy()
        wide.columns = [f"fold_{f}_val_accuracy" for f in wide.columns]
        wide["fold_mean_val_accuracy"] = scores.mean(axis=1)
        wide["fold_std_val_accuracy"] = scores.std(axis=1, ddof=1)
        table = table.merge(wide, left_on="trial_id", right_index=True, how="left")
    if fmt == "csv":
        return table.to_csv(index=False)
    return table.to_json(orient="records", indent=1)
