"""The trials tables: leaderboard, per-hyperparameter effects, pivots, failures and
one summary row per run (rules in :mod:`automnist.aggregate`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from automnist.aggregate.params import (
    PARAM_PREFIX,
    cell_label,
    check_objective,
    is_missing,
    levels,
    ok_trials,
    param_column,
    param_columns,
    param_name,
    sorted_values,
)
from automnist.records import is_fully_trained, rank_key_of

__all__ = ["effect_points", "effects", "effects_by_run", "failures", "fully_trained", "leaderboard", "pivot",
           "run_summary"]


def leaderboard(trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max") -> pd.DataFrame:
    """Rank the ok trials by their objective.

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame`` (one or several runs; ranks are over the whole frame).
    objective : str
        Metric column to rank by (with CV: the mean over folds).
    direction : {"max", "min"}

    Returns
    -------
    DataFrame
        ``rank`` (1 = best, ties share the lower rank like scikit-learn's
        ``rank_test_score``; ok trials without an objective value get ``<NA>`` and
        come last), ``run``, ``trial_id``, the ``param_*`` columns, ``<objective>``,
        ``<objective>_std`` (NaN without CV), ``n_folds``, ``test_accuracy``,
        ``duration_s``, ``n_params``, and what each score was measured at: ``epochs``,
        ``max_epochs``, ``images``, ``stop_reason``, ``fully_trained``.  Failed and
        infeasible trials are excluded.  Fully trained trials rank before partly trained
        ones (:func:`automnist.records.rank_key_of`), so a 2-epoch score is never ranked
        above a trained model's.
    """
    check_objective(trials, objective, direction)
    ok = ok_trials(trials).copy()
    std_col = f"{objective}_std"
    for col, default in ((std_col, np.nan), ("n_folds", 0), ("test_accuracy", np.nan),
                         ("duration_s", np.nan), ("n_params", np.nan), ("epochs", 0), ("max_epochs", 0),
                         ("images", pd.NA), ("stop_reason", None)):
        if col not in ok.columns:
            ok[col] = default
    value = pd.to_numeric(ok[objective], errors="coerce")
    ok[objective] = value
    ok["fully_trained"] = fully_trained(ok)
    ok["rank"] = _ranks([rank_key_of("ok", v, f, direction) for v, f in zip(value, ok["fully_trained"])], ok.index)
    order = ["rank"] + (["number"] if "number" in ok.columns else [])
    ok = ok.sort_values(order, na_position="last", kind="stable")
    no_cv = pd.to_numeric(ok["n_folds"], errors="coerce").fillna(0) <= 0
    ok[std_col] = pd.to_numeric(ok[std_col], errors="coerce").where(~no_cv, np.nan)
    columns = ["rank", "run", "trial_id", *param_columns(ok), objective, std_col, "n_folds",
               "test_accuracy", "duration_s", "n_params", "epochs", "max_epochs", "images", "stop_reason",
               "fully_trained"]
    return ok[columns].reset_index(drop=True)


def fully_trained(trials: pd.DataFrame) -> pd.Series:
    """:func:`automnist.records.is_fully_trained` of every row of a trials frame."""
    def col(name: str, default: Any) -> list[Any]:
        return list(trials[name]) if name in trials.columns else [default] * len(trials)

    return pd.Series([is_fully_trained(int(e), int(m), None if is_missing(r) else r)
                      for e, m, r in zip(col("epochs", 0), col("max_epochs", 0), col("stop_reason", None))],
                     index=trials.index, dtype=bool)


def _ranks(keys: list[tuple[bool, float] | None], index: pd.Index) -> pd.Series:
    """1-based ranks of ``keys`` (larger is better), ties sharing the lower rank, None last as NA."""
    order = sorted((k for k in keys if k is not None), reverse=True)
    first = {}
    for pos, k in enumerate(order, 1):
        first.setdefault(k, pos)
    return pd.Series([pd.NA if k is None else first[k] for k in keys], index=index, dtype="Int64")


def effects(
    trials: pd.DataFrame,
    objective: str = "val_accuracy",
    direction: str = "max",
    *,
    max_levels: int = 10,
    bins: int = 4,
) -> pd.DataFrame:
    """Per-hyperparameter effect table: the objective at each value of each hyperparameter.

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame``.
    objective, direction : str
        Metric and whether larger (``"max"``) or smaller is better.
    max_levels, bins : int
        A numeric hyperparameter with more than ``max_levels`` distinct values is
        grouped into ``bins`` quantile bins (values become interval labels).

    Returns
    -------
    DataFrame
        ``param`` (name without ``param_``), ``value``, ``mean``, ``std``, ``count``,
        ``best`` (max or min of the objective at that value), one row per value of every
        hyperparameter that varies among the ok trials, values in natural order.
    """
    check_objective(trials, objective, direction)
    ok = ok_trials(trials, objective)
    rows: list[dict[str, Any]] = []
    for column in param_columns(ok):
        if ok[column].nunique(dropna=False) > 1:
            rows.extend(_effect_rows(ok, column, objective, direction, max_levels, bins))
    return _effects_frame(rows)


_EFFECT_COLUMNS = ["param", "value", "mean", "std", "count", "best"]


def _effect_rows(
    ok: pd.DataFrame, column: str, objective: str, direction: str, max_levels: int = 10, bins: int = 4
) -> list[dict[str, Any]]:
    level, order = levels(ok[column], max_levels, bins)
    y = ok[objective].astype(float)
    rows = []
    for value in order:
        ys = y[level.isna() if is_missing(value) else level == value]
        rows.append({
            "param": param_name(column),
            "value": value,
            "mean": ys.mean(),
            "std": ys.std(ddof=1),
            "count": int(len(ys)),
            "best": ys.max() if direction == "max" else ys.min(),
        })
    return rows


def _effects_frame(rows: list[dict[str, Any]], extra: Sequence[str] = ()) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=[*extra, *_EFFECT_COLUMNS])
    out["value"] = out["value"].astype(object)
    out["count"] = out["count"].astype(int)
    return out


def effect_points(
    trials: pd.DataFrame,
    param: str,
    objective: str = "val_accuracy",
    *,
    max_levels: int = 10,
    bins: int = 4,
) -> pd.DataFrame:
    """Every ok trial's level of one hyperparameter, for box / strip plots.

    Levels are built exactly as in :func:`effects` (values, or quantile bins).

    Returns
    -------
    DataFrame
        ``run``, ``trial_id``, ``level`` (an ordered categorical of value labels, in the
        order of the :func:`effects` rows; a missing value is ``"none"``) and
        ``<objective>``.
    """
    check_objective(trials, objective, "max")
    column = param_column(trials, param)
    ok = ok_trials(trials, objective)
    level, order = levels(ok[column], max_levels, bins)
    labels = [cell_label(v) for v in order]
    text = level.map(lambda v: cell_label(v))
    return pd.DataFrame({
        "run": ok["run"].to_numpy(),
        "trial_id": ok["trial_id"].to_numpy(),
        "level": pd.Categorical(text.to_numpy(), categories=labels, ordered=True),
        objective: ok[objective].astype(float).to_numpy(),
    })


def effects_by_run(
    trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max"
) -> pd.DataFrame:
    """:func:`effects` of every run, for the hyperparameters all runs share.

    A hyperparameter is shared when every run's ok trials have values for it and it
    varies across the ok trials of all runs together; a run where it is constant gets
    its one row (so the runs can be compared side by side).

    Returns
    -------
    DataFrame
        ``run`` followed by the :func:`effects` columns.
    """
    check_objective(trials, objective, direction)
    ok = ok_trials(trials, objective)
    runs = list(pd.unique(ok["run"]))  # runs without ok trials have no effects to compare
    shared = [c for c in param_columns(trials)
              if all(ok.loc[ok["run"] == r, c].notna().any() for r in runs)
              and ok[c].nunique(dropna=False) > 1]
    rows = []
    for run in runs:
        mine = ok[ok["run"] == run]
        for column in shared:
            rows.extend({"run": run, **row} for row in _effect_rows(mine, column, objective, direction))
    return _effects_frame(rows, extra=["run"])


def pivot(
    trials: pd.DataFrame,
    row_param: str,
    col_param: str,
    objective: str = "val_accuracy",
    aggfunc: str = "mean",
) -> pd.DataFrame:
    """Two-hyperparameter pivot of the objective over ok trials (for 2-D grids).

    Parameters
    ----------
    row_param, col_param : str
        Hyperparameter names, with or without the ``param_`` prefix.
    aggfunc : str
        Any pandas aggregation name (``"mean"``, ``"max"``, ``"count"`` ...).

    Returns
    -------
    DataFrame
        Index: values of ``row_param`` (named ``row_param``), columns: values of
        ``col_param`` (named ``col_param``), cells: ``aggfunc`` of the objective
        (NaN where no ok trial has that combination).
    """
    check_objective(trials, objective, "max")
    row = param_column(trials, row_param)
    col = param_column(trials, col_param)
    if row == col:
        raise ValueError(f"col_param: must differ from row_param, got {col_param!r} twice")
    ok = ok_trials(trials, objective)
    table = pd.pivot_table(ok, values=objective, index=row, columns=col, aggfunc=aggfunc, dropna=False,
                           observed=True)
    table = table.reindex(index=sorted_values(list(ok[row].dropna().unique())),
                          columns=sorted_values(list(ok[col].dropna().unique())))
    table.index.name = param_name(row)
    table.columns.name = param_name(col)
    return table.astype(float)


def failures(trials: pd.DataFrame) -> pd.DataFrame:
    """Failed and infeasible trials with their status and error text.

    Returns
    -------
    DataFrame
        ``run``, ``trial_id``, ``status``, ``error``, ``duration_s`` and the
        ``param_*`` columns, in trial order.
    """
    bad = trials[trials["status"].isin(["failed", "infeasible"])]
    if "number" in bad.columns:
        bad = bad.sort_values(["run", "number"], kind="stable")
    columns = ["run", "trial_id", "status", "error", "duration_s", *param_columns(trials)]
    bad = bad.reindex(columns=columns)
    return bad.reset_index(drop=True)


def _config_text(row: pd.Series) -> str:
    parts = [f"{param_name(c)}={cell_label(row[c])}" for c in row.index
             if str(c).startswith(PARAM_PREFIX) and not is_missing(row[c])]
    return ", ".join(parts)


def run_summary(
    runs_frame: pd.DataFrame,
    trials: pd.DataFrame,
    objective: str = "val_accuracy",
    direction: str = "max",
) -> pd.DataFrame:
    """One row per run, for side-by-side comparison of several runs.

    Parameters
    ----------
    runs_frame : DataFrame
        ``Store.runs_frame`` (rows for the runs to compare).
    trials : DataFrame
        ``Store.trials_frame`` of those runs.

    Returns
    -------
    DataFrame
        ``run``, ``strategy``, ``dataset``, ``status``, ``n_trials``, ``n_ok``,
        ``n_failed``, ``n_infeasible``, ``best_trial``, ``best_value`` (objective of the
        best trial), ``best_std``, ``best_test_accuracy``, ``best_config``
        (``name=value, ...``), ``trials_duration_s`` (sum of trial durations) and
        ``wall_s`` (run end minus start; NaN while running).
    """
    check_objective(trials, objective, direction)
    rows = []
    for _, run in runs_frame.iterrows():
        name = run["run"]
        mine = trials[trials["run"] == name]
        status = mine["status"].value_counts()
        board = leaderboard(mine, objective, direction)
        board = board[board[objective].notna()]
        top = board.iloc[0] if len(board) else None
        started, ended = run.get("started_at", np.nan), run.get("ended_at", np.nan)
        wall = float(ended) - float(started) if pd.notna(ended) and pd.notna(started) and ended else np.nan
        rows.append({
            "run": name,
            "strategy": run.get("strategy", ""),
            "dataset": run.get("dataset", ""),
            "status": run.get("status", ""),
            "n_trials": int(len(mine)),
            "n_ok": int(status.get("ok", 0)),
            "n_failed": int(status.get("failed", 0)),
            "n_infeasible": int(status.get("infeasible", 0)),
            "best_trial": None if top is None else top["trial_id"],
            "best_value": np.nan if top is None else float(top[objective]),
            "best_std": np.nan if top is None else float(top[f"{objective}_std"]),
            "best_test_accuracy": np.nan if top is None else float(top["test_accuracy"]),
            "best_config": "" if top is None else _config_text(top),
            "trials_duration_s": float(pd.to_numeric(mine["duration_s"], errors="coerce").sum()),
            "wall_s": wall,
        })
    columns = ["run", "strategy", "dataset", "status", "n_trials", "n_ok", "n_failed", "n_infeasible",
               "best_trial", "best_value", "best_std", "best_test_accuracy", "best_config",
               "trials_duration_s", "wall_s"]
    return pd.DataFrame(rows, columns=columns)
