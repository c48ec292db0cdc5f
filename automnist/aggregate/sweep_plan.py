"""The walk of a one-factor-at-a-time sweep: which configurations it trains, step by step.

One walk serves both sides: :mod:`automnist.strategies.sweep` trains the configurations it
proposes, and :mod:`automnist.aggregate.sweep` replays it on stored results, so a chained
sweep is reconstructed without extra bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automnist.builders import resolve_learning_rate
from automnist.errors import SpecError
from automnist.records import plain_value
from automnist.space import complete_config
from automnist.spec import ChoiceParam, FloatParam, IntParam, Param, SearchSpec, is_active, param_default, value_label

__all__ = ["SweepStep", "baseline_config", "same_value", "sweep_config", "walk_sweep"]


@dataclass
class SweepStep:
    """One hyperparameter's turn: its values, each as a complete configuration."""

    index: int
    param: str
    baseline_value: Any
    baseline_config: dict[str, Any]
    candidates: list[tuple[Any, dict[str, Any]]]  # (value, complete configuration), sweep order
    baseline_changed: bool  # an earlier winner was carried into the baseline (chain)
    skipped: str | None = None  # why the hyperparameter was not swept


def same_value(a: Any, b: Any) -> bool:
    """Whether two hyperparameter values are the same value (equal :func:`value_label`)."""
    return value_label(a) == value_label(b)


def _values_of(p: Param, source: str) -> list[Any]:
    """Every value a sweep trains for ``p``."""
    if isinstance(p, ChoiceParam):
        return [plain_value(v) for v in p.values]
    if isinstance(p, IntParam):
        return p.grid()
    if isinstance(p, FloatParam):
        grid = p.grid()
        if grid is None:
            raise SpecError(source, f"params.{p.name}",
                            "a sweep trains every value of each hyperparameter: give the float range a step or use choice")
        return grid
    raise TypeError(f"cannot sweep {p!r}")


def sweep_config(spec: SearchSpec, assign: Mapping[str, Any]) -> dict[str, Any]:
    """A complete configuration: fixed values, ``assign`` for the searched ones, and None
    for conditional hyperparameters whose condition is not met (as the tuners record)."""
    return resolve_learning_rate(complete_config(spec, assign))


def _initial_assignment(spec: SearchSpec) -> dict[str, Any]:
    return {p.name: plain_value(param_default(p)) for p in spec.tunable}


def baseline_config(spec: SearchSpec) -> dict[str, Any]:
    """The initial baseline: fixed values plus each searched hyperparameter's default."""
    return sweep_config(spec, _initial_assignment(spec))


def walk_sweep(spec: SearchSpec, choose: Callable[[SweepStep], Any]) -> list[SweepStep]:
    """Visit the hyperparameters in file order.

    Parameters
    ----------
    spec : SearchSpec
        A sweep spec.
    choose : callable
        ``choose(step)`` returns the step's winner (or None), which becomes the baseline
        value when ``search.chain`` is on.  Not called for skipped steps.

    Returns
    -------
    list of SweepStep
        One step per searched hyperparameter, in file order.
    """
    assign = _initial_assignment(spec)
    initial = dict(assign)
    steps: list[SweepStep] = []
    for i, p in enumerate(spec.tunable):
        base_cfg = sweep_config(spec, assign)
        changed = any(not same_value(assign[k], initial[k]) for k in assign)
        if not is_active(p, base_cfg):
            cond = ", ".join(f"{parent} in {list(vals)}" for parent, vals in p.when)
            steps.append(SweepStep(i, p.name, None, base_cfg, [], changed,
                                   skipped=f"not swept: its condition ({cond}) does not hold in the baseline"))
            continue
        values = _values_of(p, spec.source)
        if not any(same_value(v, assign[p.name]) for v in values):
            values = [assign[p.name], *values]  # a default off the grid is still the baseline
        candidates = [(v, base_cfg if same_value(v, assign[p.name]) else sweep_config(spec, {**assign, p.name: v}))
                      for v in values]
        step = SweepStep(i, p.name, assign[p.name], base_cfg, candidates, changed)
        steps.append(step)
        winner = choose(step)
        if spec.search.chain and winner is not None:
            assign[p.name] = winner
    return steps
