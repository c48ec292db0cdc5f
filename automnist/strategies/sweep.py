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
  ``params`` is the complete configuration, which is how
  :func:`automnist.aggregate.sweep_table` tells which
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

The walk and the carry rule live in :mod:`automnist.aggregate.sweep_plan` and
:mod:`automnist.aggregate.sweep`, whose analysis functions (``sweep_values``,
``sweep_table``, ``sweep_curves``) replay the same walk on the stored results.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from typing import Any

from automnist.aggregate.sweep import carried_value
from automnist.aggregate.sweep_plan import SweepStep, baseline_config, walk_sweep
from automnist.records import TrialRecord, plain_value
from automnist.spec import SearchSpec, value_label

__all__ = ["run", "planned_trials"]

#: Trial id prefix of the baseline configuration.
BASELINE = "baseline"


def _key(values: Mapping[str, Any]) -> str:
    return json.dumps(plain_value(dict(values)), sort_keys=True, default=str)


# =========================================================================== strategy


def planned_trials(spec: SearchSpec) -> int:
    """Trial records the sweep will train (distinct configurations x repeats), capped by
    ``search.max_trials``.  Conditional hyperparameters count when active in the initial
    baseline."""
    return min(_uncapped_trials(spec), spec.search.max_trials)


def _uncapped_trials(spec: SearchSpec) -> int:
    keys = {_key(baseline_config(spec))}
    for step in walk_sweep(spec, lambda step: None):
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

    def choose(step: SweepStep) -> Any:
        scored = []
        for value, cfg in step.candidates:
            records = train(f"{step.param}={value_label(value)}", cfg)
            scores = [r.objective(name) for r in records if r.status == "ok"]
            scored.append((value, [s for s in scores if s is not None and not math.isnan(s)]))
        return carried_value(scored, step.baseline_value, spec.objective.direction, spec.search.chain_alpha)

    initial = baseline_config(spec)
    try:
        train(BASELINE, initial)
        walk_sweep(spec, choose)
    except _Budget as stop:
        warnings.warn(
            f"sweep {spec.name!r} stopped by {stop} after {len(ctx.trials)} of {_uncapped_trials(spec)} "
            f"planned trials; raise the budget to sweep every value",
            UserWarning,
            stacklevel=2,
        )

