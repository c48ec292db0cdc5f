"""Analysis of finished one-factor-at-a-time sweeps: per-value statistics, the winner of
each hyperparameter with its margin and p-value, and averaged learning curves.

Pure pandas over the store's frames.  The functions replay the sweep's walk
(:func:`automnist.aggregate.sweep_plan.walk_sweep`) with the stored results and the
rule the sweep itself carries winners by (:func:`carried_value`), so a chained sweep is
reconstructed without extra bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from automnist.aggregate.params import cell_label
from automnist.aggregate.significance import welch_p
from automnist.aggregate.sweep_plan import SweepStep, same_value, walk_sweep
from automnist.records import score_key
from automnist.spec import TOP_KEYS, SearchSpec, parse_spec, value_label

__all__ = ["best_value", "carried_value", "sweep_curves", "sweep_spec", "sweep_table", "sweep_values"]


def best_value(values: list[tuple[Any, list[float]]], direction: str) -> Any:
    """The value with the best mean score.

    Parameters
    ----------
    values : list of (value, list of float)
        Each value with the objective of its ok runs, in sweep order.
    direction : {"max", "min"}

    Returns
    -------
    Any
        The value whose mean has the best :func:`automnist.records.score_key` (means equal
        to 7 decimals tie, and ties go to the first value), or None when no value has runs.
    """
    best, best_key = None, None
    for value, scores in values:
        key = score_key(sum(scores) / len(scores), direction) if scores else None
        if key is not None and (best_key is None or key > best_key):
            best, best_key = value, key
    return best


def carried_value(values: list[tuple[Any, list[float]]], baseline_value: Any, direction: str,
                  chain_alpha: float | None = None) -> Any:
    """The value a chained sweep hands on to the next hyperparameter's baseline.

    Parameters
    ----------
    values : list of (value, list of float)
        As for :func:`best_value`.
    baseline_value : Any
        The hyperparameter's value in the current baseline.
    direction : {"max", "min"}
    chain_alpha : float, optional
        ``search.chain_alpha``: carry the best value only when Welch's t-test against the
        baseline value's runs (:func:`automnist.aggregate.significance.welch_p`) gives
        p < chain_alpha; otherwise the baseline value stays.

    Returns
    -------
    Any
        The :func:`best_value` (or the baseline value, see ``chain_alpha``); None when no
        value has runs.
    """
    best = best_value(values, direction)
    if best is None or chain_alpha is None or same_value(best, baseline_value):
        return best
    runs = {value_label(v): scores for v, scores in values}
    baseline_runs = runs.get(value_label(baseline_value), [])
    if not baseline_runs:  # the baseline value failed: any working value beats it
        return best
    p = welch_p(runs[value_label(best)], baseline_runs)
    return best if p is not None and p < chain_alpha else baseline_value


def sweep_spec(spec: SearchSpec | Mapping[str, Any]) -> SearchSpec:
    """A :class:`SearchSpec` from a spec or a run's stored ``config`` (``spec.to_dict()``,
    possibly with extra keys such as ``lr_find``, which are ignored)."""
    if isinstance(spec, SearchSpec):
        return spec
    return parse_spec({k: v for k, v in dict(spec).items() if k in TOP_KEYS}, source="<run config>")


def _assignments(
    trials: pd.DataFrame, spec: SearchSpec
) -> tuple[list[SweepStep], dict[tuple[int, str], list[int]], dict[int, Any]]:
    """Replay the walk on stored results: the steps, per (step, value label) the row
    positions of ``trials`` holding that configuration, and per step the value it handed
    on (:func:`carried_value`)."""
    if "run" in trials and trials["run"].nunique() > 1:
        raise ValueError(f"trials: pass the trials of one sweep run, got runs {sorted(trials['run'].unique())}")
    names = [p.name for p in spec.tunable]
    missing = [n for n in names if f"param_{n}" not in trials]
    rows_by_key: dict[tuple[str, ...], list[int]] = {}
    for pos, row in enumerate(trials.itertuples(index=False)):
        row_d = row._asdict()
        key = tuple("none" if n in missing else cell_label(row_d[f"param_{n}"]) for n in names)
        rows_by_key.setdefault(key, []).append(pos)
    scores = _objective_scores(trials, spec)
    members: dict[tuple[int, str], list[int]] = {}

    def choose(step: SweepStep) -> Any:
        scored = []
        for value, cfg in step.candidates:
            key = tuple(value_label(cfg.get(n)) for n in names)
            rows = rows_by_key.get(key, [])
            members[(step.index, value_label(value))] = rows
            scored.append((value, [scores[i] for i in rows if scores[i] is not None]))
        handed[step.index] = carried_value(scored, step.baseline_value, spec.objective.direction,
                                           spec.search.chain_alpha)
        return handed[step.index]

    handed: dict[int, Any] = {}
    return walk_sweep(spec, choose), members, handed


def _objective_scores(trials: pd.DataFrame, spec: SearchSpec) -> list[float | None]:
    name = spec.objective.name
    out: list[float | None] = []
    for status, value in zip(trials["status"], trials[name] if name in trials else [math.nan] * len(trials)):
        ok = status == "ok" and value is not None and not math.isnan(float(value))
        out.append(float(value) if ok else None)
    return out


def sweep_values(trials: pd.DataFrame, spec: SearchSpec | Mapping[str, Any]) -> pd.DataFrame:
    """One row per (hyperparameter, value) of a sweep run, in sweep order.

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame(run)`` of one sweep run.
    spec : SearchSpec or mapping
        The run's spec, or its stored ``config``.

    Returns
    -------
    DataFrame
        ``step, param, value`` (label), ``is_baseline``, ``baseline_changed``, ``n`` (ok
        trials), ``n_failed``, ``mean``, ``std`` (ddof=1, NaN for one run), ``min``, ``max``
        of the objective, ``test_accuracy`` (mean), ``trial_ids`` (comma-separated).
        Skipped conditional hyperparameters have one row with ``value`` None and the reason
        in ``note``.
    """

    spec = sweep_spec(spec)
    steps, members, _ = _assignments(trials, spec)
    scores = _objective_scores(trials, spec)
    test = trials["test_accuracy"].to_numpy(dtype=float) if "test_accuracy" in trials else np.full(len(trials), np.nan)
    ids = trials["trial_id"].astype(str).tolist()
    rows = []
    for step in steps:
        if step.skipped:
            rows.append({"step": step.index, "param": step.param, "value": None, "is_baseline": False,
                         "baseline_changed": step.baseline_changed, "n": 0, "n_failed": 0, "mean": np.nan,
                         "std": np.nan, "min": np.nan, "max": np.nan, "test_accuracy": np.nan, "trial_ids": "",
                         "note": step.skipped})
            continue
        for value, _ in step.candidates:
            rows_i = members.get((step.index, value_label(value)), [])
            ok = [scores[i] for i in rows_i if scores[i] is not None]
            tests = [test[i] for i in rows_i if scores[i] is not None and not np.isnan(test[i])]
            rows.append({
                "step": step.index, "param": step.param, "value": value_label(value),
                "is_baseline": same_value(value, step.baseline_value), "baseline_changed": step.baseline_changed,
                "n": len(ok), "n_failed": len(rows_i) - len(ok),
                "mean": float(np.mean(ok)) if ok else np.nan,
                "std": float(np.std(ok, ddof=1)) if len(ok) > 1 else np.nan,
                "min": float(np.min(ok)) if ok else np.nan, "max": float(np.max(ok)) if ok else np.nan,
                "test_accuracy": float(np.mean(tests)) if tests else np.nan,
                "trial_ids": ",".join(ids[i] for i in rows_i),
                "note": "" if rows_i else "not trained (budget)",
            })
    columns = ["step", "param", "value", "is_baseline", "baseline_changed", "n", "n_failed", "mean", "std", "min",
               "max", "test_accuracy", "trial_ids", "note"]
    return pd.DataFrame(rows, columns=columns)


def sweep_table(trials: pd.DataFrame, spec: SearchSpec | Mapping[str, Any]) -> pd.DataFrame:
    """Per hyperparameter of a sweep: the best value, its margin and a p-value.

    The winner is the value with the best mean objective (the rule the sweep itself
    uses with ``chain: true``).  The p-value compares the winner with the runner-up by
    Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) over their repeats; with
    one run per value but k-fold CV it uses the fold mean and standard deviation
    (``ttest_ind_from_stats`` with n = k).  CV folds share training data, so that p-value
    is optimistic: read it as indicative.  It is NaN, with the reason in ``note``, when a
    value has a single run without folds, or fewer than two values were trained.

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame(run)`` of one sweep run.
    spec : SearchSpec or mapping
        The run's spec, or its stored ``config``.

    Returns
    -------
    DataFrame
        ``step, param, objective, n_values, best, best_mean, runner_up, runner_up_mean,
        margin`` (how much the best beats the runner-up, positive = better, in objective
        units), ``p_value, test, n`` (runs or folds per value behind the p-value),
        ``baseline, baseline_mean, p_vs_baseline`` (Welch's t-test of the best value against
        the baseline value, the test ``search.chain_alpha`` uses; NaN when the baseline is
        best), ``baseline_changed`` (an earlier winner had been carried into the baseline),
        ``carried`` (this best value became the next baseline: ``chain: true``, and with
        ``chain_alpha`` only when ``p_vs_baseline < chain_alpha``), ``note``.
    """
    from scipy import stats

    spec = sweep_spec(spec)
    values = sweep_values(trials, spec)
    steps, members, handed = _assignments(trials, spec)
    scores = _objective_scores(trials, spec)
    obj = spec.objective.name
    std_col = f"{obj}_std"
    sign = 1.0 if spec.objective.direction == "max" else -1.0
    out = []
    for step in steps:
        group = values[values["step"] == step.index]
        base = {"step": step.index, "param": step.param, "objective": obj, "baseline_changed": step.baseline_changed,
                "carried": False, "p_vs_baseline": np.nan}
        if step.skipped:
            out.append({**base, "n_values": 0, "best": None, "best_mean": np.nan, "runner_up": None,
                        "runner_up_mean": np.nan, "margin": np.nan, "p_value": np.nan, "test": "", "n": 0,
                        "baseline": None, "baseline_mean": np.nan, "note": step.skipped})
            continue
        trained = group[group["n"] > 0]
        ranked = trained.assign(_s=[score_key(m, spec.objective.direction) for m in trained["mean"]])
        ranked = ranked.sort_values("_s", ascending=False, kind="stable")  # ties keep sweep order, as best_value does
        baseline_row = group[group["is_baseline"]].iloc[0]
        row = {**base, "n_values": int(len(group)), "baseline": baseline_row["value"],
               "baseline_mean": baseline_row["mean"], "best": None, "best_mean": np.nan, "runner_up": None,
               "runner_up_mean": np.nan, "margin": np.nan, "p_value": np.nan, "test": "", "n": 0, "note": ""}
        if len(ranked) == 0:
            row["note"] = "no value trained successfully"
            out.append(row)
            continue
        best = ranked.iloc[0]
        row.update(best=best["value"], best_mean=best["mean"], n=int(best["n"]))
        # chain: the best value becomes the next baseline (with chain_alpha only when it beats the baseline value)
        row["carried"] = bool(spec.search.chain) and value_label(handed.get(step.index)) == best["value"]
        if best["value"] != baseline_row["value"]:
            p_base = welch_p([scores[i] for i in members[(step.index, best["value"])] if scores[i] is not None],
                              [scores[i] for i in members[(step.index, baseline_row["value"])] if scores[i] is not None])
            row["p_vs_baseline"] = np.nan if p_base is None else p_base
        if len(ranked) < 2:
            row["note"] = "fewer than two values trained successfully"
            out.append(row)
            continue
        second = ranked.iloc[1]
        row.update(runner_up=second["value"], runner_up_mean=second["mean"],
                   margin=float(sign * (best["mean"] - second["mean"])))
        a = [scores[i] for i in members[(step.index, best["value"])] if scores[i] is not None]
        b = [scores[i] for i in members[(step.index, second["value"])] if scores[i] is not None]
        if len(a) >= 2 and len(b) >= 2:
            if np.ptp(a) == 0 and np.ptp(b) == 0:
                row["note"] = "no spread in either value's runs: no t-test"
            else:
                row["p_value"] = welch_p(a, b)
                row["test"] = f"Welch t-test over {len(a)} vs {len(b)} runs"
        else:
            fold_stats = _fold_stats(trials, members[(step.index, best["value"])], members[(step.index, second["value"])],
                                     obj, std_col)
            if fold_stats is None:
                row["note"] = "single run per value: set search.repeats >= 2 (or search.cv) for a p-value"
            else:
                (m1, s1, k1), (m2, s2, k2) = fold_stats
                if s1 == 0 and s2 == 0:
                    row["note"] = "no spread across folds: no t-test"
                else:
                    row["p_value"] = float(stats.ttest_ind_from_stats(m1, s1, k1, m2, s2, k2, equal_var=False).pvalue)
                    row["test"] = f"Welch t-test from fold mean/std ({k1} vs {k2} folds; optimistic)"
                    row["n"] = int(k1)
        out.append(row)
    columns = ["step", "param", "objective", "n_values", "best", "best_mean", "runner_up", "runner_up_mean", "margin",
               "p_value", "test", "n", "baseline", "baseline_mean", "p_vs_baseline", "baseline_changed", "carried",
               "note"]
    return pd.DataFrame(out, columns=columns)


def _fold_stats(trials: pd.DataFrame, rows_a: list[int], rows_b: list[int], obj: str,
                std_col: str) -> tuple[tuple[float, float, int], tuple[float, float, int]] | None:
    """(mean, std, folds) of the single ok CV trial of each value, or None."""
    if std_col not in trials or "n_folds" not in trials:
        return None
    got = []
    for rows in (rows_a, rows_b):
        ok = [i for i in rows if trials["status"].iloc[i] == "ok"]
        if len(ok) != 1:
            return None
        i = ok[0]
        k = int(trials["n_folds"].iloc[i])
        std = float(trials[std_col].iloc[i])
        if k < 2 or math.isnan(std):
            return None
        got.append((float(trials[obj].iloc[i]), std, k))
    return got[0], got[1]


def sweep_curves(history: pd.DataFrame, trials: pd.DataFrame, spec: SearchSpec | Mapping[str, Any],
                 metrics: tuple[str, ...] = ("val_accuracy", "val_loss")) -> pd.DataFrame:
    """Per-epoch learning curves of each swept value, averaged over repeats and folds.

    Parameters
    ----------
    history : DataFrame
        ``Store.history_frame(run)`` of the sweep run.
    trials : DataFrame
        ``Store.trials_frame(run)`` of the same run.
    spec : SearchSpec or mapping
        The run's spec, or its stored ``config``.
    metrics : tuple of str
        History metrics to keep.

    Returns
    -------
    DataFrame
        ``step, param, value, is_baseline, baseline_changed, metric, epoch, mean, std``
        (ddof=1 over runs, NaN for one), ``n`` (runs behind the point).  The baseline's
        trials appear under every hyperparameter whose baseline value they are.
    """

    spec = sweep_spec(spec)
    values = sweep_values(trials, spec)
    columns = ["step", "param", "value", "is_baseline", "baseline_changed", "metric", "epoch", "mean", "std", "n"]
    hist = history[history["metric"].isin(metrics)]
    if hist.empty or values.empty:
        return pd.DataFrame(columns=columns)
    # one value per (trial, epoch, metric): mean over folds first, so every run weighs the same
    per_run = hist.groupby(["trial_id", "metric", "epoch"], as_index=False)["value"].mean()
    pieces = []
    for row in values[values["trial_ids"] != ""].itertuples(index=False):
        ids = row.trial_ids.split(",")
        sub = per_run[per_run["trial_id"].isin(ids)]
        if sub.empty:
            continue
        agg = sub.groupby(["metric", "epoch"])["value"].agg(["mean", "std", "count"]).reset_index()
        agg = agg.rename(columns={"count": "n"})
        for col in ("step", "param", "value", "is_baseline", "baseline_changed"):
            agg[col] = getattr(row, col)
        pieces.append(agg)
    if not pieces:
        return pd.DataFrame(columns=columns)
    return pd.concat(pieces, ignore_index=True)[columns]
