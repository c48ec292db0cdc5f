"""Significance tests: is the best configuration better than the runner-up
(:func:`compare_best`), does a hyperparameter matter (:func:`param_significance`), do two
samples of runs differ (:func:`welch_p`)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from automnist.aggregate.params import check_objective, is_missing, levels, ok_trials, param_columns, param_name
from automnist.aggregate.trials import leaderboard
from automnist.records import SCORE_DECIMALS

__all__ = ["compare_best", "param_significance", "welch_p"]

#: Wilcoxon signed-rank needs at least this many paired folds, else a paired t-test.
WILCOXON_MIN_N = 6
#: A level needs at least this many ok trials to enter the Kruskal-Wallis test.
KRUSKAL_MIN_GROUP = 2


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
    check_objective(trials, objective, direction)
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

    check_objective(trials, objective, "max")
    ok = ok_trials(trials, objective)
    rows = []
    for column in param_columns(ok):
        if ok[column].nunique(dropna=False) <= 1:
            continue
        level, order = levels(ok[column], max_levels, bins)
        y = ok[objective].astype(float)
        groups, dropped = [], 0
        for value in order:
            ys = y[level.isna() if is_missing(value) else level == value].to_numpy()
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


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Welch's t-test p-value of two samples of runs.

    Parameters
    ----------
    a, b : list of float
        Objective values of two sets of runs.

    Returns
    -------
    float or None
        None when one sample has fewer than two runs.  Without spread in either sample
        the test is undefined: 1.0 when the values are equal (to
        :data:`automnist.records.SCORE_DECIMALS` decimals), else 0.0.
    """
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if max(a) == min(a) and max(b) == min(b):  # no spread: equal means or certainly different
        return 1.0 if round(a[0], SCORE_DECIMALS) == round(b[0], SCORE_DECIMALS) else 0.0
    with warnings.catch_warnings():  # repeats equal up to float noise: scipy warns, the test is fine
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
