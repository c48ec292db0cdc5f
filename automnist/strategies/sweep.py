"""One-factor-at-a-time sweeps (``search.strategy: sweep``), the method of seed 004, ch. 3.2.

The **baseline** is the spec's fixed values plus each searched hyperparameter's default
(:func:`automnist.spec.param_default`: its ``default:``, else its first choice, else the
low end of its range).  Then, for each searched hyperparameter in file order, every one of
its values (its choices, or the stepped grid of an int/float range) is trained with every
other hyperparameter at the baseline, ``search.repeats`` times with seeds
``search.seed + r`` (the same seeds for every value, so repeats are paired), each run
optionally with ``search.cv`` folds.

* A configuration is never trained twice: the baseline is trained once (trial ids
  ``baseline#r0``, ``baseline#r1``, ...) and its result serves as every hyperparameter's
  baseline value.  Other trials are named ``<name>=<value>#r<repeat>``; each record's
  ``params`` is the complete configuration, which is how :func:`sweep_table` tells which
  hyperparameter a trial varies.
* ``search.chain: true`` carries each hyperparameter's winner (best mean objective over its
  repeats; means equal to 7 decimals tie, and ties go to the first value in sweep order)
  into the baseline before the next one is swept, as seed 004 does by hand.  With
  ``search.chain_alpha`` the winner is carried only when Welch's t-test against the
  baseline value's repeats gives p < chain_alpha; otherwise the baseline value stays.
* A conditional hyperparameter (``when:``) is swept only when its condition holds in the
  baseline at its turn.
* ``search.max_trials`` is a budget on trial records (repeats count one each) and
  ``search.time_budget`` stops starting trials; a sweep cut short by them warns.

The analysis functions (:func:`sweep_values`, :func:`sweep_table`, :func:`sweep_curves`)
are pure pandas over the store's frames: they replay the walk above with the stored
results, so a chained sweep is reconstructed without extra bookkeeping.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automnist.errors import SpecError
from automnist.records import TrialRecord
from automnist.spec import (
    ChoiceParam,
    FloatParam,
    IntParam,
    Param,
    SearchSpec,
    _plain,
    is_active,
    param_default,
    parse_spec,
    value_label,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["run", "planned_trials", "sweep_values", "sweep_table", "sweep_curves", "sweep_spec"]

#: Trial id prefix of the baseline configuration.
BASELINE = "baseline"


# =========================================================================== the walk


@dataclass
class _Step:
    """One hyperparameter's turn: its values, each as a complete configuration."""

    index: int
    param: str
    baseline_value: Any
    baseline_config: dict[str, Any]
    candidates: list[tuple[Any, dict[str, Any]]]  # (value, complete configuration), sweep order
    baseline_changed: bool  # an earlier winner was carried into the baseline (chain)
    skipped: str | None = None  # why the hyperparameter was not swept


def _values_of(p: Param, source: str) -> list[Any]:
    """Every value a sweep trains for ``p``."""
    if isinstance(p, ChoiceParam):
        return [_plain(v) for v in p.values]
    if isinstance(p, IntParam):
        return p.grid()
    if isinstance(p, FloatParam):
        grid = p.grid()
        if grid is None:
            raise SpecError(source, f"params.{p.name}",
                            "a sweep trains every value of each hyperparameter: give the float range a step or use choice")
        return grid
    raise TypeError(f"cannot sweep {p!r}")


def _config(spec: SearchSpec, assign: Mapping[str, Any]) -> dict[str, Any]:
    """A complete configuration: fixed values, ``assign`` for the searched ones, and None
    for conditional hyperparameters whose condition is not met (as the tuners record)."""
    from automnist.builders import resolve_learning_rate

    values = spec.fixed_values()
    values.update({k: _plain(v) for k, v in assign.items()})
    conditional = [p for p in spec.tunable if p.when]
    changed = True
    while changed:  # nested conditions: repeat until stable
        changed = False
        for p in conditional:
            if values.get(p.name) is not None and not is_active(p, values):
                values[p.name] = None
                changed = True
    return resolve_learning_rate(values)


def _key(values: Mapping[str, Any]) -> str:
    return json.dumps(_plain(dict(values)), sort_keys=True, default=str)


def _same(a: Any, b: Any) -> bool:
    return _label(a) == _label(b)


def _walk(spec: SearchSpec, choose: Callable[[_Step], Any]) -> list[_Step]:
    """Visit the hyperparameters in file order; ``choose(step)`` returns the step's winner
    (or None), which becomes the baseline value when ``search.chain`` is on."""
    assign = {p.name: _plain(param_default(p)) for p in spec.tunable}
    initial = dict(assign)
    steps: list[_Step] = []
    for i, p in enumerate(spec.tunable):
        base_cfg = _config(spec, assign)
        changed = any(not _same(assign[k], initial[k]) for k in assign)
        if not is_active(p, base_cfg):
            cond = ", ".join(f"{parent} in {list(vals)}" for parent, vals in p.when)
            steps.append(_Step(i, p.name, None, base_cfg, [], changed,
                               skipped=f"not swept: its condition ({cond}) does not hold in the baseline"))
            continue
        values = _values_of(p, spec.source)
        if not any(_same(v, assign[p.name]) for v in values):
            values = [assign[p.name], *values]  # a default off the grid is still the baseline
        candidates = [(v, base_cfg if _same(v, assign[p.name]) else _config(spec, {**assign, p.name: v}))
                      for v in values]
        step = _Step(i, p.name, assign[p.name], base_cfg, candidates, changed)
        steps.append(step)
        winner = choose(step)
        if spec.search.chain and winner is not None:
            assign[p.name] = winner
    return steps


#: Mean scores are compared at this many decimals: metrics are float32, so two values with
#: the same correct count can differ by ~1e-8 after averaging, and that must stay a tie.
_DECIMALS = 7


def _rank_score(mean: float, direction: str) -> float:
    """Higher is better, rounded so float noise ties (see :data:`_DECIMALS`)."""
    return round(mean if direction == "max" else -mean, _DECIMALS)


def _best(values: list[tuple[Any, list[float]]], direction: str) -> Any:
    """The value with the best mean score (first in sweep order on ties), or None."""
    best, best_score = None, None
    for value, scores in values:
        if not scores:
            continue
        score = _rank_score(sum(scores) / len(scores), direction)
        if best_score is None or score > best_score:
            best, best_score = value, score
    return best


def _welch_p(a: list[float], b: list[float]) -> float | None:
    """Welch's t-test p-value of two samples (None: fewer than two runs in one of them)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if max(a) == min(a) and max(b) == min(b):  # no spread: equal means or certainly different
        return 1.0 if round(a[0], _DECIMALS) == round(b[0], _DECIMALS) else 0.0
    with warnings.catch_warnings():  # repeats equal up to float noise: scipy warns, the test is fine
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _carry(step: _Step, scored: list[tuple[Any, list[float]]], spec: SearchSpec) -> Any:
    """The value the step hands on: the best mean (:func:`_best`); with ``search.chain_alpha``
    only when Welch's t-test against the baseline value's runs gives p < chain_alpha,
    otherwise the baseline value stays."""
    best = _best(scored, spec.objective.direction)
    alpha = spec.search.chain_alpha
    if best is None or alpha is None or _same(best, step.baseline_value):
        return best
    runs = {_label(v): scores for v, scores in scored}
    baseline_runs = runs.get(_label(step.baseline_value), [])
    if not baseline_runs:  # the baseline value failed: any working value beats it
        return best
    p = _welch_p(runs[_label(best)], baseline_runs)
    return best if p is not None and p < alpha else step.baseline_value


# =========================================================================== strategy


def planned_trials(spec: SearchSpec) -> int:
    """Trial records the sweep will train (distinct configurations x repeats), capped by
    ``search.max_trials``.  Conditional hyperparameters count when active in the initial
    baseline."""
    return min(_uncapped_trials(spec), spec.search.max_trials)


def _uncapped_trials(spec: SearchSpec) -> int:
    keys = {_key(_config(spec, {p.name: _plain(param_default(p)) for p in spec.tunable}))}
    for step in _walk(spec, lambda step: None):
        keys.update(_key(cfg) for _, cfg in step.candidates)
    return len(keys) * spec.search.repeats


class _Budget(Exception):
    pass


def run(ctx: Any) -> None:
    """Run the sweep: every configuration through ``ctx.evaluate``, the baseline once."""
    spec: SearchSpec = ctx.spec
    repeats = spec.search.repeats
    trained: dict[str, list[TrialRecord]] = {}
    used_ids: dict[str, str] = {}
    name = spec.objective.name

    def train(label: str, cfg: dict[str, Any]) -> list[TrialRecord]:
        key = _key(cfg)
        if key in trained:
            return trained[key]
        base_id = label
        n = 2
        while used_ids.get(base_id, key) != key:  # two values with one label: keep ids unique
            base_id, n = f"{label}~{n}", n + 1
        used_ids[base_id] = key
        records = []
        for r in range(repeats):
            if len(ctx.trials) >= spec.search.max_trials:
                raise _Budget(f"search.max_trials={spec.search.max_trials}")
            if not ctx.time_left():
                raise _Budget(f"search.time_budget={spec.search.time_budget:g} s")
            records.append(ctx.evaluate(f"{base_id}#r{r}", cfg, seed=spec.search.seed + r))
        trained[key] = records
        return records

    def choose(step: _Step) -> Any:
        scored = []
        for value, cfg in step.candidates:
            records = train(f"{step.param}={value_label(value)}", cfg)
            scores = [r.objective(name) for r in records if r.status == "ok"]
            scored.append((value, [s for s in scores if s is not None and not math.isnan(s)]))
        return _carry(step, scored, spec)

    initial = _config(spec, {p.name: _plain(param_default(p)) for p in spec.tunable})
    try:
        train(BASELINE, initial)
        _walk(spec, choose)
    except _Budget as stop:
        warnings.warn(
            f"sweep {spec.name!r} stopped by {stop} after {len(ctx.trials)} of {_uncapped_trials(spec)} "
            f"planned trials; raise the budget to sweep every value",
            UserWarning,
            stacklevel=2,
        )


# =========================================================================== analysis


def sweep_spec(spec: SearchSpec | Mapping[str, Any]) -> SearchSpec:
    """A :class:`SearchSpec` from a spec or a run's stored ``config`` (``spec.to_dict()``,
    possibly with extra keys such as ``lr_find``, which are ignored)."""
    if isinstance(spec, SearchSpec):
        return spec
    from automnist.spec import _TOP_KEYS

    return parse_spec({k: v for k, v in dict(spec).items() if k in _TOP_KEYS}, source="<run config>")


def _label(v: Any) -> str:
    """``value_label`` that also reads frame cells: NaN/None -> "none", 64.0 -> "64"."""
    if v is None:
        return "none"
    try:
        import pandas as pd

        if not isinstance(v, (list, tuple, dict)) and pd.isna(v):
            return "none"
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item") and not isinstance(v, (list, tuple, dict)):
        v = v.item()  # numpy scalars
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        v = int(v)
    return value_label(v)


def _assignments(
    trials: pd.DataFrame, spec: SearchSpec
) -> tuple[list[_Step], dict[tuple[int, str], list[int]], dict[int, Any]]:
    """Replay the walk on stored results: the steps, per (step, value label) the row
    positions of ``trials`` holding that configuration, and per step the value it handed
    on (:func:`_carry`)."""
    if "run" in trials and trials["run"].nunique() > 1:
        raise ValueError(f"trials: pass the trials of one sweep run, got runs {sorted(trials['run'].unique())}")
    names = [p.name for p in spec.tunable]
    missing = [n for n in names if f"param_{n}" not in trials]
    rows_by_key: dict[tuple[str, ...], list[int]] = {}
    for pos, row in enumerate(trials.itertuples(index=False)):
        row_d = row._asdict()
        key = tuple("none" if n in missing else _label(row_d[f"param_{n}"]) for n in names)
        rows_by_key.setdefault(key, []).append(pos)
    scores = _objective_scores(trials, spec)
    members: dict[tuple[int, str], list[int]] = {}

    def choose(step: _Step) -> Any:
        scored = []
        for value, cfg in step.candidates:
            key = tuple(_label(cfg.get(n)) for n in names)
            rows = rows_by_key.get(key, [])
            members[(step.index, _label(value))] = rows
            scored.append((value, [scores[i] for i in rows if scores[i] is not None]))
        handed[step.index] = _carry(step, scored, spec)
        return handed[step.index]

    handed: dict[int, Any] = {}
    return _walk(spec, choose), members, handed


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
    import numpy as np
    import pandas as pd

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
            rows_i = members.get((step.index, _label(value)), [])
            ok = [scores[i] for i in rows_i if scores[i] is not None]
            tests = [test[i] for i in rows_i if scores[i] is not None and not np.isnan(test[i])]
            rows.append({
                "step": step.index, "param": step.param, "value": _label(value),
                "is_baseline": _same(value, step.baseline_value), "baseline_changed": step.baseline_changed,
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
    import numpy as np
    import pandas as pd
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
        ranked = trained.assign(_s=[_rank_score(m, spec.objective.direction) for m in trained["mean"]])
        ranked = ranked.sort_values("_s", ascending=False, kind="stable")  # ties keep sweep order, as _best does
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
        row["carried"] = bool(spec.search.chain) and _label(handed.get(step.index)) == best["value"]
        if best["value"] != baseline_row["value"]:
            p_base = _welch_p([scores[i] for i in members[(step.index, best["value"])] if scores[i] is not None],
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
                row["p_value"] = _welch_p(a, b)
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
    import pandas as pd

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
