"""Comparison tables from the store's frames: pure pandas / scipy, no drawing.

Every public function takes DataFrame(s) shaped like ``Store.trials_frame``,
``Store.folds_frame``, ``Store.history_frame`` or ``Store.runs_frame`` and returns
a new DataFrame.  :mod:`automnist.plots` draws these numbers and
:mod:`automnist.report` puts them in the HTML report, so the numbers are tested
here without pictures (optuna's ``_get_*_info`` / ``_get_*_plot`` split).

Rules shared by all functions
-----------------------------
* Only ``status == "ok"`` trials are ranked or compared; ``failed`` and
  ``infeasible`` trials only appear in :func:`failures` and :func:`run_summary`.
* A hyperparameter is a ``param_<name>`` column.  It "varies" when its ok trials
  (with an objective value) take more than one distinct value; constant
  hyperparameters are left out of effect and significance tables.
* A numeric hyperparameter with more than ``max_levels`` distinct values (a
  continuous range searched by random / Bayesian search) is grouped into
  ``bins`` quantile bins (:func:`pandas.qcut`) so its levels hold several trials.
* Standard deviations are sample standard deviations (``ddof=1``), NaN for one value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from automnist.spec import value_label

__all__ = [
    "classification_report_frame",
    "compare_best",
    "confusion_frame",
    "effect_points",
    "effects",
    "effects_by_run",
    "failures",
    "leaderboard",
    "learning_curve_data",
    "param_columns",
    "param_name",
    "param_significance",
    "parallel_data",
    "pivot",
    "pr_curve_data",
    "roc_curve_data",
    "run_summary",
    "varying_params",
]

PARAM_PREFIX = "param_"
DIRECTIONS = ("max", "min")
#: Wilcoxon signed-rank needs at least this many paired folds, else a paired t-test.
WILCOXON_MIN_N = 6
#: A level needs at least this many ok trials to enter the Kruskal-Wallis test.
KRUSKAL_MIN_GROUP = 2

# --------------------------------------------------------------------------- helpers


def param_columns(trials: pd.DataFrame) -> list[str]:
    """The ``param_*`` columns of a trials frame, in frame order."""
    return [c for c in trials.columns if str(c).startswith(PARAM_PREFIX)]


def param_name(column: str) -> str:
    """A hyperparameter's name from its column (``param_k`` -> ``k``)."""
    return column[len(PARAM_PREFIX):] if column.startswith(PARAM_PREFIX) else column


def _param_column(trials: pd.DataFrame, param: str) -> str:
    column = param if param.startswith(PARAM_PREFIX) else PARAM_PREFIX + param
    if column not in trials.columns:
        known = ", ".join(param_name(c) for c in param_columns(trials)) or "none"
        raise ValueError(f"param: no hyperparameter named {param!r} in the trials frame; known: {known}")
    return column


def _check_objective(trials: pd.DataFrame, objective: str, direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: must be 'max' or 'min', got {direction!r}")
    if objective not in trials.columns:
        metrics = [c for c in trials.columns if any(k in str(c) for k in ("loss", "accuracy"))]
        raise ValueError(
            f"objective: no column {objective!r} in the trials frame; metric columns: {', '.join(metrics) or 'none'}"
        )


def _ok(trials: pd.DataFrame, objective: str | None = None) -> pd.DataFrame:
    """The ok trials (and, with ``objective``, only those that have a value)."""
    ok = trials[trials["status"] == "ok"]
    if objective is not None:
        ok = ok[pd.to_numeric(ok[objective], errors="coerce").notna()]
    return ok


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    """Distinct values in natural order (numbers numerically, else as text), NaN last."""
    present = [v for v in values if not _isnan(v)]
    try:
        ordered = sorted(set(present))
    except TypeError:
        ordered = sorted(set(present), key=str)
    return ordered + ([np.nan] if len(present) < len(values) else [])


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _levels(values: pd.Series, max_levels: int = 10, bins: int = 4) -> tuple[pd.Series, list[Any]]:
    """Group a hyperparameter's values into levels.

    Returns the level of every row and the levels in display order.  Numeric columns
    with more than ``max_levels`` distinct values are cut into ``bins`` quantile bins
    labelled ``[smallest, largest]`` value in the bin (3 significant digits);
    everything else keeps its own values.
    """
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > max_levels:
        numbers = values.astype(float)
        codes = pd.qcut(numbers, q=bins, labels=False, duplicates="drop")
        bounds = numbers.groupby(codes).agg(["min", "max"])  # label bins by the values they hold
        labels = {code: f"[{lo:.3g}, {hi:.3g}]" for code, (lo, hi) in bounds.iterrows()}
        level = codes.map(labels).astype(object)
        return level, [labels[code] for code in sorted(labels)]
    level = values.astype(object).where(values.notna(), np.nan)
    return level, _sorted_values(list(level.unique()))


def varying_params(trials: pd.DataFrame, objective: str | None = None) -> list[str]:
    """Hyperparameter names (without ``param_``) taking > 1 distinct value among ok trials."""
    ok = _ok(trials, objective)
    return [param_name(c) for c in param_columns(ok) if ok[c].nunique(dropna=False) > 1]


def _best_agg(direction: str) -> str:
    return "max" if direction == "max" else "min"


# --------------------------------------------------------------------------- tables


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
        ``duration_s``, ``n_params``.  Failed and infeasible trials are excluded.
    """
    _check_objective(trials, objective, direction)
    ok = _ok(trials).copy()
    std_col = f"{objective}_std"
    for col, default in ((std_col, np.nan), ("n_folds", 0), ("test_accuracy", np.nan),
                         ("duration_s", np.nan), ("n_params", np.nan)):
        if col not in ok.columns:
            ok[col] = default
    value = pd.to_numeric(ok[objective], errors="coerce")
    ok[objective] = value
    ok["rank"] = value.rank(ascending=direction == "min", method="min").astype("Int64")
    order = ["rank"] + (["number"] if "number" in ok.columns else [])
    ok = ok.sort_values(order, na_position="last", kind="stable")
    no_cv = pd.to_numeric(ok["n_folds"], errors="coerce").fillna(0) <= 0
    ok[std_col] = pd.to_numeric(ok[std_col], errors="coerce").where(~no_cv, np.nan)
    columns = ["rank", "run", "trial_id", *param_columns(ok), objective, std_col, "n_folds",
               "test_accuracy", "duration_s", "n_params"]
    return ok[columns].reset_index(drop=True)


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
    _check_objective(trials, objective, direction)
    ok = _ok(trials, objective)
    rows: list[dict[str, Any]] = []
    for column in param_columns(ok):
        if ok[column].nunique(dropna=False) > 1:
            rows.extend(_effect_rows(ok, column, objective, direction, max_levels, bins))
    return _effects_frame(rows)


_EFFECT_COLUMNS = ["param", "value", "mean", "std", "count", "best"]


def _effect_rows(
    ok: pd.DataFrame, column: str, objective: str, direction: str, max_levels: int = 10, bins: int = 4
) -> list[dict[str, Any]]:
    level, order = _levels(ok[column], max_levels, bins)
    y = ok[objective].astype(float)
    rows = []
    for value in order:
        ys = y[level.isna() if _isnan(value) else level == value]
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
    _check_objective(trials, objective, "max")
    column = _param_column(trials, param)
    ok = _ok(trials, objective)
    level, order = _levels(ok[column], max_levels, bins)
    labels = ["none" if _isnan(v) else value_label(v) for v in order]
    text = level.map(lambda v: "none" if _isnan(v) else value_label(v))
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
    _check_objective(trials, objective, direction)
    ok = _ok(trials, objective)
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
    _check_objective(trials, objective, "max")
    row = _param_column(trials, row_param)
    col = _param_column(trials, col_param)
    if row == col:
        raise ValueError(f"col_param: must differ from row_param, got {col_param!r} twice")
    ok = _ok(trials, objective)
    table = pd.pivot_table(ok, values=objective, index=row, columns=col, aggfunc=aggfunc, dropna=False,
                           observed=True)
    table = table.reindex(index=_sorted_values(list(ok[row].dropna().unique())),
                          columns=_sorted_values(list(ok[col].dropna().unique())))
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


def _paired_test(a: np.ndarray, b: np.ndarray) -> tuple[str, float, float, str]:
    """Paired test on fold scores: Wilcoxon signed-rank for n >= 6, else paired t-test."""
    from scipy import stats

    diff = a - b
    note = ""
    if np.all(diff == 0):
        note = "all paired differences are zero"
    elif np.ptp(diff) == 0:
        note = "paired differences have zero variance"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(a) >= WILCOXON_MIN_N:
            res = stats.wilcoxon(a, b)
            name = "wilcoxon signed-rank"
        else:
            res = stats.ttest_rel(a, b)
            name = "paired t-test"
    return name, float(res.statistic), float(res.pvalue), note


def compare_best(
    trials: pd.DataFrame,
    folds: pd.DataFrame | None,
    objective: str = "val_accuracy",
    direction: str = "max",
) -> pd.DataFrame:
    """Is the best configuration of each run really better than the runner-up?

    The two best ok trials of each run (by :func:`leaderboard`) are compared on their
    per-fold ``objective`` scores, paired by fold index: a Wilcoxon signed-rank test
    (:func:`scipy.stats.wilcoxon`) when there are at least 6 paired folds, else a
    paired t-test (:func:`scipy.stats.ttest_rel`).  Without folds for both trials no
    test is possible and the row says so (``test == "none (no folds)"``, NaN p-value).

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame``.
    folds : DataFrame or None
        ``Store.folds_frame`` (``run``, ``trial_id``, ``fold``, metric columns).

    Returns
    -------
    DataFrame
        One row per run: ``run``, ``best``, ``runner_up`` (trial ids), ``best_value``,
        ``runner_up_value``, ``mean_diff`` (best minus runner-up: the mean paired fold
        difference when tested, else the difference of the objective values),
        ``test``, ``statistic``, ``p_value``, ``n`` (paired folds), ``note``.
    """
    _check_objective(trials, objective, direction)
    columns = ["run", "best", "runner_up", "best_value", "runner_up_value", "mean_diff",
               "test", "statistic", "p_value", "n", "note"]
    rows = []
    for run in pd.unique(trials["run"]):
        board = leaderboard(trials[trials["run"] == run], objective, direction)
        board = board[board[objective].notna()]
        row: dict[str, Any] = dict.fromkeys(columns, np.nan)
        row.update(run=run, n=0, note="")
        if len(board) < 2:
            row.update(test="none (fewer than 2 ok trials)")
            if len(board):
                row.update(best=board["trial_id"].iloc[0], best_value=board[objective].iloc[0])
            rows.append(row)
            continue
        best, second = board.iloc[0], board.iloc[1]
        row.update(best=best["trial_id"], runner_up=second["trial_id"], best_value=best[objective],
                   runner_up_value=second[objective], mean_diff=best[objective] - second[objective])
        paired = _paired_folds(folds, run, best["trial_id"], second["trial_id"], objective)
        if paired is None:
            row.update(test="none (no folds)")
        elif len(paired) < 2:
            row.update(test="none (fewer than 2 paired folds)", n=len(paired))
        else:
            a, b = paired["a"].to_numpy(float), paired["b"].to_numpy(float)
            name, stat, p, note = _paired_test(a, b)
            row.update(test=name, statistic=stat, p_value=p, n=len(paired),
                       mean_diff=float(np.mean(a - b)), note=note)
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    out["n"] = out["n"].astype(int)
    return out


def _paired_folds(folds: pd.DataFrame | None, run: Any, a: Any, b: Any, objective: str) -> pd.DataFrame | None:
    if folds is None or folds.empty or objective not in folds.columns:
        return None
    mine = folds[folds["run"] == run]
    fa = mine.loc[mine["trial_id"] == a, ["fold", objective]].dropna()
    fb = mine.loc[mine["trial_id"] == b, ["fold", objective]].dropna()
    if fa.empty or fb.empty:
        return None
    merged = fa.merge(fb, on="fold", suffixes=("_a", "_b"))
    return merged.rename(columns={f"{objective}_a": "a", f"{objective}_b": "b"}).sort_values("fold")


def param_significance(
    trials: pd.DataFrame,
    objective: str = "val_accuracy",
    *,
    max_levels: int = 10,
    bins: int = 4,
) -> pd.DataFrame:
    """Does each hyperparameter matter?  Kruskal-Wallis across its values.

    Rule: for every hyperparameter that varies among the ok trials, its levels (values,
    or quantile bins as in :func:`effects`) with at least 2 ok trials form the groups;
    levels with fewer trials are left out (counted in ``reason``).  With at least 2
    groups, :func:`scipy.stats.kruskal` gives ``statistic`` and ``p_value``; otherwise
    both are NaN and ``reason`` says why.  The test needs no direction.

    Returns
    -------
    DataFrame
        ``param``, ``n_groups``, ``n`` (trials in the groups), ``statistic``,
        ``p_value``, ``reason`` (empty when every level was tested).
    """
    from scipy import stats

    _check_objective(trials, objective, "max")
    ok = _ok(trials, objective)
    rows = []
    for column in param_columns(ok):
        if ok[column].nunique(dropna=False) <= 1:
            continue
        level, order = _levels(ok[column], max_levels, bins)
        y = ok[objective].astype(float)
        groups, dropped = [], 0
        for value in order:
            ys = y[level.isna() if _isnan(value) else level == value].to_numpy()
            if len(ys) >= KRUSKAL_MIN_GROUP:
                groups.append(ys)
            else:
                dropped += 1
        row = {"param": param_name(column), "n_groups": len(groups), "n": int(sum(map(len, groups))),
               "statistic": np.nan, "p_value": np.nan, "reason": ""}
        if dropped:
            row["reason"] = f"{dropped} value(s) with < {KRUSKAL_MIN_GROUP} ok trials left out"
        if len(groups) < 2:
            row["reason"] = (f"not testable: fewer than 2 values with >= {KRUSKAL_MIN_GROUP} ok trials"
                             + (f" ({dropped} value(s) with fewer)" if dropped else ""))
        elif np.ptp(np.concatenate(groups)) == 0:
            row["reason"] = "not testable: all objective values are identical"
        else:
            res = stats.kruskal(*groups)
            row.update(statistic=float(res.statistic), p_value=float(res.pvalue))
        rows.append(row)
    out = pd.DataFrame(rows, columns=["param", "n_groups", "n", "statistic", "p_value", "reason"])
    out[["n_groups", "n"]] = out[["n_groups", "n"]].astype(int)
    return out


def _config_text(row: pd.Series) -> str:
    parts = [f"{param_name(c)}={value_label(row[c])}" for c in row.index
             if str(c).startswith(PARAM_PREFIX) and not _isnan(row[c])]
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
    _check_objective(trials, objective, direction)
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


# --------------------------------------------------------------------------- numbers for plots


def learning_curve_data(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    k: int = 5,
    objective: str = "val_accuracy",
    direction: str = "max",
) -> pd.DataFrame:
    """Per-epoch train/validation curves of the ``k`` best trials.

    With k-fold CV the value at each epoch is the mean over folds.

    Returns
    -------
    DataFrame
        ``rank``, ``run``, ``trial_id``, ``label`` (``"#rank run/trial"``),
        ``quantity`` (``loss`` or ``accuracy``), ``split`` (``train`` or
        ``validation``), ``epoch``, ``value``; sorted by rank, quantity, split, epoch.
    """
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k!r}")
    columns = ["rank", "run", "trial_id", "label", "quantity", "split", "epoch", "value"]
    board = leaderboard(trials, objective, direction)
    top = board[board[objective].notna()].head(k)[["rank", "run", "trial_id"]]
    metrics = {"loss": ("loss", "train"), "accuracy": ("accuracy", "train"),
               "val_loss": ("loss", "validation"), "val_accuracy": ("accuracy", "validation")}
    if top.empty or history.empty:
        return pd.DataFrame(columns=columns)
    hist = history[history["metric"].isin(list(metrics))]
    hist = hist.merge(top, on=["run", "trial_id"], how="inner")
    curves = (hist.groupby(["rank", "run", "trial_id", "metric", "epoch"], sort=False)["value"]
              .mean().reset_index())
    curves["quantity"] = curves["metric"].map(lambda m: metrics[m][0])
    curves["split"] = curves["metric"].map(lambda m: metrics[m][1])
    multi = trials["run"].nunique() > 1
    curves["label"] = [f"#{r} {run}/{t}" if multi else f"#{r} {t}"
                       for r, run, t in zip(curves["rank"], curves["run"], curves["trial_id"])]
    curves = curves.sort_values(["rank", "run", "trial_id", "quantity", "split", "epoch"], kind="stable")
    return curves[columns].reset_index(drop=True)


def parallel_data(
    trials: pd.DataFrame,
    objective: str = "val_accuracy",
    direction: str = "max",
    max_lines: int = 300,
    seed: int = 0,
) -> pd.DataFrame:
    """Numbers for a parallel-coordinates plot of the ok trials.

    Every varying hyperparameter and the objective become an axis.  Numeric axes are
    min-max normalised to [0, 1] (of ``log10`` of the values when all are positive and
    span at least a factor 100, e.g. a learning rate); categorical axes place their
    values, in natural order, evenly on [0, 1].  With more than ``max_lines`` trials, the best ``max_lines // 4`` are kept
    plus a random sample (``seed``) of the rest.

    Returns
    -------
    DataFrame
        Tidy: ``run``, ``trial_id``, ``objective`` (the trial's value, for colour),
        ``axis`` (hyperparameter name or the objective), ``kind`` (``numeric`` or
        ``categorical``), ``raw`` (the value as text, 4 significant digits for numbers),
        ``position`` (in [0, 1]).
        Axes appear in the order hyperparameters, then objective.
    """
    _check_objective(trials, objective, direction)
    columns = ["run", "trial_id", "objective", "axis", "kind", "raw", "position"]
    ok = _ok(trials, objective)
    if len(ok) > max_lines:
        ranked = ok.sort_values(objective, ascending=direction == "min", kind="stable")
        n_top = max_lines // 4
        rest = ranked.iloc[n_top:].sample(n=max_lines - n_top, random_state=seed)
        ok = pd.concat([ranked.iloc[:n_top], rest])
    axes = [PARAM_PREFIX + p for p in varying_params(ok, objective)] + [objective]
    frames = []
    for column in axes:
        values = ok[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:
            v = values.astype(float)
            raw = v.map(lambda x: f"{x:.4g}")
            if v.min() > 0 and v.max() / v.min() >= 100:
                v = np.log10(v)
            lo, hi = v.min(), v.max()
            pos = (v - lo) / (hi - lo) if hi > lo else v * 0 + 0.5
        else:
            text = values.map(lambda x: "none" if _isnan(x) else value_label(x))
            order = _sorted_values(list(values.dropna().unique()))
            labels = [value_label(x) for x in order] + (["none"] if values.isna().any() else [])
            step = 1.0 / (len(labels) - 1) if len(labels) > 1 else 0.0
            where = {lab: (i * step if len(labels) > 1 else 0.5) for i, lab in enumerate(labels)}
            pos = text.map(where)
            raw = text
        frames.append(pd.DataFrame({
            "run": ok["run"].to_numpy(), "trial_id": ok["trial_id"].to_numpy(),
            "objective": ok[objective].astype(float).to_numpy(), "axis": param_name(column),
            "kind": "numeric" if numeric else "categorical", "raw": raw.to_numpy(),
            "position": pos.astype(float).to_numpy(),
        }))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _class_names(class_names: Sequence[str] | None, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names: expected {k} names (one per class), got {len(names)}")
    return names


def _check_proba(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(int).ravel()
    y_prob = np.asarray(y_prob, dtype=float)
    if y_prob.ndim != 2 or y_prob.shape[0] != len(y_true):
        raise ValueError(f"y_prob: expected shape (n, k) with n = {len(y_true)}, got {y_prob.shape}")
    return y_true, y_prob


def roc_curve_data(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One-vs-rest ROC curve points per class (:func:`sklearn.metrics.roc_curve`).

    Returns
    -------
    DataFrame
        ``class``, ``fpr``, ``tpr``, ``auc`` (:func:`sklearn.metrics.auc`, repeated on
        every row of its class).  Classes absent from ``y_true`` are skipped (ROC is
        undefined without positives).
    """
    from sklearn.metrics import auc, roc_curve

    y_true, y_prob = _check_proba(y_true, y_prob)
    names = _class_names(class_names, y_prob.shape[1])
    frames = []
    for i, name in enumerate(names):
        positives = y_true == i
        if not positives.any() or positives.all():
            continue
        fpr, tpr, _ = roc_curve(positives, y_prob[:, i])
        frames.append(pd.DataFrame({"class": name, "fpr": fpr, "tpr": tpr, "auc": auc(fpr, tpr)}))
    if not frames:
        return pd.DataFrame(columns=["class", "fpr", "tpr", "auc"])
    return pd.concat(frames, ignore_index=True)


def pr_curve_data(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One-vs-rest precision-recall points per class (:func:`sklearn.metrics.precision_recall_curve`).

    Returns
    -------
    DataFrame
        ``class``, ``recall``, ``precision``, ``ap``
        (:func:`sklearn.metrics.average_precision_score`).  Classes absent from
        ``y_true`` are skipped.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y_true, y_prob = _check_proba(y_true, y_prob)
    names = _class_names(class_names, y_prob.shape[1])
    frames = []
    for i, name in enumerate(names):
        positives = y_true == i
        if not positives.any():
            continue
        precision, recall, _ = precision_recall_curve(positives, y_prob[:, i])
        ap = average_precision_score(positives, y_prob[:, i])
        frames.append(pd.DataFrame({"class": name, "recall": recall, "precision": precision, "ap": ap}))
    if not frames:
        return pd.DataFrame(columns=["class", "recall", "precision", "ap"])
    return pd.concat(frames, ignore_index=True)


def confusion_frame(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Confusion matrix (:func:`sklearn.metrics.confusion_matrix`) as a DataFrame.

    ``class_names`` fixes the classes (``0 .. k-1``); without it the classes are
    ``0 .. max label``.  Index ``true`` (rows), columns ``predicted``.
    """
    from sklearn.metrics import confusion_matrix

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    k = len(class_names) if class_names is not None else int(max(y_true.max(), y_pred.max())) + 1
    names = _class_names(class_names, k)
    cm = confusion_matrix(y_true, y_pred, labels=list(range(k)))
    return pd.DataFrame(cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def classification_report_frame(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`sklearn.metrics.classification_report` as a DataFrame.

    Returns
    -------
    DataFrame
        Index: the class names, then ``accuracy``, ``macro avg``, ``weighted avg``;
        columns ``precision``, ``recall``, ``f1-score``, ``support``.  The
        ``accuracy`` row holds the accuracy in ``f1-score`` (as sklearn prints it),
        NaN in precision/recall and the total in ``support``.
    """
    from sklearn.metrics import classification_report

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    k = len(class_names) if class_names is not None else int(max(y_true.max(), y_pred.max())) + 1
    names = _class_names(class_names, k)
    report = classification_report(y_true, y_pred, labels=list(range(k)), target_names=names,
                                   output_dict=True, zero_division=0)
    accuracy = report.pop("accuracy", None)
    frame = pd.DataFrame(report).T[["precision", "recall", "f1-score", "support"]]
    if accuracy is not None:
        acc = pd.DataFrame({"precision": [np.nan], "recall": [np.nan], "f1-score": [accuracy],
                            "support": [float(len(y_true))]}, index=["accuracy"])
        frame = pd.concat([frame.iloc[:k], acc, frame.iloc[k:]])
    frame["support"] = frame["support"].astype(int)
    frame.index.name = "class"
    return frame
