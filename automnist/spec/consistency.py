"""Checks that every setting of a spec can take effect: a ``when:`` condition that can hold
and is not circular, per-layer overrides (``filters_3``) within the layer count, a cnn with
at least one conv block.  A setting that could never do anything is a
:class:`~automnist.errors.SpecError` naming its key, not a silent no-op.
"""

from __future__ import annotations

from typing import Any

from automnist.errors import SpecError
from automnist.records import plain_value
from automnist.spec.model import ChoiceParam, FixedParam, FloatParam, IntParam, Param
from automnist.spec.values import is_int, is_number, short_repr
from automnist.spec.vocabulary import CONV_PARAMS, DEFAULTS, INDEXED, split_indexed

__all__ = ["check_consistency"]


def _possible(p: Param | None, name: str, value: Any) -> bool:
    """Whether hyperparameter ``name`` (``p``, or its builder default when absent) can take ``value``."""
    if p is None:
        return plain_value(DEFAULTS.get(name)) == value
    if isinstance(p, FixedParam):
        return plain_value(p.value) == value
    if isinstance(p, ChoiceParam):
        return any(plain_value(v) == value for v in p.values)
    if isinstance(p, IntParam):
        return is_int(value) and p.low <= value <= p.high and (not p.step or (value - p.low) % p.step == 0)
    assert isinstance(p, FloatParam)
    return is_number(value) and p.low <= value <= p.high


def _largest(p: Param | None, name: str) -> int:
    """The largest value a layer-count hyperparameter can take."""
    if p is None:
        return int(DEFAULTS[name])
    if isinstance(p, FixedParam):
        return int(p.value) if is_int(p.value) else 0
    if isinstance(p, ChoiceParam):
        return max((int(v) for v in p.values if is_int(v)), default=0)
    return int(p.high)


def _check_when(params: tuple[Param, ...], source: str) -> None:
    pmap = {p.name: p for p in params}
    for p in params:
        for parent, allowed in p.when:
            path = f"params.{p.name}.when.{parent}"
            if parent == p.name:
                raise SpecError(source, path, "a hyperparameter cannot depend on itself")
            if not any(_possible(pmap.get(parent), parent, plain_value(v)) for v in allowed):
                can = pmap.get(parent)
                takes = (f"it is always {short_repr(DEFAULTS.get(parent))} (not in params)" if can is None
                         else f"it takes {short_repr(plain_value(can.to_config()))}")
                raise SpecError(source, path, f"can never hold: {parent} is never {short_repr(list(allowed))}; {takes}")
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise SpecError(source, f"params.{cycle[0]}.when", f"circular condition: {' -> '.join(cycle)}")
        state[name] = 1
        for parent, _ in pmap[name].when:
            if parent in pmap:
                visit(parent, trail + [name])
        state[name] = 2

    for p in params:
        visit(p.name, [])


def _check_layers(model: str, params: tuple[Param, ...], source: str) -> None:
    pmap = {p.name: p for p in params}
    for p in params:
        indexed = split_indexed(p.name)
        if indexed is None:
            continue
        base, index = indexed
        if model == "mlp" and base in CONV_PARAMS:
            raise SpecError(source, f"params.{p.name}", "is a convolutional hyperparameter; the mlp model has no conv layers")
        counter = INDEXED[base]
        most = _largest(pmap.get(counter), counter)
        if index > most:
            raise SpecError(source, f"params.{p.name}",
                            f"sets layer {index}, but {counter} is at most {most}: the override would never be used")
    conv = pmap.get("conv_layers")
    if model == "cnn" and conv is not None:
        if isinstance(conv, FixedParam) and conv.value == 0:
            raise SpecError(source, "params.conv_layers", "a cnn needs at least 1 conv block, got 0 (use model: mlp)")
        if isinstance(conv, ChoiceParam) and any(v == 0 for v in conv.values):
            raise SpecError(source, "params.conv_layers.choice",
                            "a cnn needs at least 1 conv block: every trial with 0 would be infeasible (use model: mlp)")
        if isinstance(conv, IntParam) and conv.low == 0:
            raise SpecError(source, "params.conv_layers.low",
                            "a cnn needs at least 1 conv block: every trial with 0 would be infeasible (use model: mlp)")


def check_consistency(model: str, params: tuple[Param, ...], source: str) -> None:
    """Raise :class:`SpecError` for a setting that could never take effect.

    Parameters
    ----------
    model : {"cnn", "mlp"}
    params : tuple of Param
        The parsed ``params:`` section.
    source : str
        Named in error messages.
    """
    _check_when(params, source)
    _check_layers(model, params, source)
