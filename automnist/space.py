"""SearchSpec -> Keras Tuner hyperparameters, or scikit-learn grids / distributions.

Keras Tuner's ``Choice`` only takes scalars of one type, so list- or mapping-valued
choices (``filters: {choice: [[8, 16], [32, 64]]}``, augmentation presets) are
registered under their :func:`~automnist.spec.value_label` and decoded back here:
the builders always see real values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automnist.errors import SpecError
from automnist.records import plain_value
from automnist.spec import ChoiceParam, FloatParam, IntParam, Param, SearchSpec, is_active, value_label

__all__ = ["active_params", "complete_config", "declare", "decode", "encode_choice", "sklearn_distributions",
           "sklearn_grid"]


def _scalar(v: Any) -> bool:
    return isinstance(v, (bool, int, float, str))


def complete_config(spec: SearchSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """A complete configuration from the values of some hyperparameters.

    Every hyperparameter not in ``values`` takes its fixed value, else its default
    (:meth:`SearchSpec.default_values`); then every conditional searched hyperparameter
    whose ``when:`` does not hold is set to None (the value was not used, as the tuners
    record it), repeated until stable so that nested conditions follow their parents.

    Parameters
    ----------
    spec : SearchSpec
    values : mapping
        Hyperparameter values (lists, mappings or numpy scalars are made plain).

    Returns
    -------
    dict
        Every hyperparameter of :data:`automnist.spec.DEFAULTS` and of the spec.
    """
    out = spec.default_values()
    out.update({name: plain_value(v) for name, v in values.items()})
    conditional = [p for p in spec.tunable if p.when]
    changed = True
    while changed:
        changed = False
        for p in conditional:
            if out.get(p.name) is not None and not is_active(p, out):
                out[p.name] = None
                changed = True
    return out


def encode_choice(p: ChoiceParam) -> tuple[list[Any], dict[Any, Any]]:
    """The values Keras Tuner sees for a choice, and the map back to real values."""
    vals = list(p.values)
    if all(_scalar(v) for v in vals) and len({type(v) for v in vals}) == 1:
        return vals, {v: v for v in vals}
    labels = [value_label(v) for v in vals]
    return labels, dict(zip(labels, (plain_value(v) for v in vals)))


def declare(hp: Any, spec: SearchSpec) -> dict[str, Any]:
    """Register the spec's searched hyperparameters on ``hp`` and return a complete config.

    Parameters
    ----------
    hp : keras_tuner.HyperParameters
    spec : SearchSpec

    Returns
    -------
    dict
        Every hyperparameter's value for this trial (fixed ones included), decoded.
    """
    fixed = spec.fixed_values()
    chosen: dict[str, Any] = {}
    for p in _parents_first(spec.tunable):
        raw = _register(hp, p, spec, fixed, chosen)
        if raw is not None:
            chosen[p.name] = raw
    return decode(spec, chosen)


def _parents_first(params: tuple[Param, ...]) -> list[Param]:
    """Order parameters so every conditional one comes after its searched parents."""
    by_name = {p.name: p for p in params}
    done: dict[str, Param] = {}

    def visit(p: Param, trail: tuple[str, ...]) -> None:
        if p.name in done:
            return
        if p.name in trail:
            raise ValueError(f"params.{p.name}.when: circular condition through {' -> '.join(trail)}")
        for parent, _ in p.when:
            if parent in by_name:
                visit(by_name[parent], trail + (p.name,))
        done[p.name] = p

    for p in params:
        visit(p, ())
    return list(done.values())


def _register(hp: Any, p: Param, spec: SearchSpec, fixed: Mapping[str, Any], chosen: Mapping[str, Any]) -> Any:
    tunable_names = {q.name for q in spec.tunable}
    # Conditions on fixed parents are decided now; on searched parents they become scopes.
    static = tuple((parent, vals) for parent, vals in p.when if parent not in tunable_names)
    dynamic = [(parent, vals) for parent, vals in p.when if parent in tunable_names]
    if static and not all(fixed.get(parent) in vals for parent, vals in static):
        return None
    scopes = []
    for parent, vals in dynamic:
        parent_p = spec.param_map[parent]
        if isinstance(parent_p, ChoiceParam):
            enc, _ = encode_choice(parent_p)
            back = {value_label(v): e for v, e in zip(parent_p.values, enc)}
            vals = [back.get(value_label(v), v) for v in vals]
        scopes.append(hp.conditional_scope(parent, list(vals)))
    for s in scopes:
        s.__enter__()
    try:
        return _hp_value(hp, p)
    finally:
        for s in reversed(scopes):
            s.__exit__(None, None, None)


def _hp_value(hp: Any, p: Param) -> Any:
    if isinstance(p, ChoiceParam):
        enc, _ = encode_choice(p)
        default = None
        if p.default is not None:
            default = enc[[value_label(v) for v in p.values].index(value_label(p.default))]
        return hp.Choice(p.name, enc, default=default, ordered=False if isinstance(enc[0], str) else None)
    if isinstance(p, IntParam):
        return hp.Int(p.name, p.low, p.high, step=p.step, sampling="log" if p.log else "linear", default=p.default)
    if isinstance(p, FloatParam):
        return hp.Float(p.name, p.low, p.high, step=p.step, sampling="log" if p.log else "linear", default=p.default)
    raise TypeError(f"cannot declare {p!r}")


def decode(spec: SearchSpec, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """Turn tuner values (labels for non-scalar choices) into a complete configuration
    (:func:`complete_config`).

    ``tuner/*`` keys from Hyperband and None values (parameters the tuner did not set)
    are dropped.
    """
    pmap = spec.param_map
    values: dict[str, Any] = {}
    for name, raw in chosen.items():
        if name.startswith("tuner/") or raw is None:
            continue
        p = pmap.get(name)
        if isinstance(p, ChoiceParam):
            _, back = encode_choice(p)
            raw = back.get(raw, raw)
        values[name] = raw
    return complete_config(spec, values)


def suggest(trial: Any, spec: SearchSpec) -> dict[str, Any]:
    """Ask an ``optuna.Trial`` for the spec's searched hyperparameters and return the complete
    configuration (:func:`decode`).

    Define-by-run: a conditional hyperparameter is asked for only when its ``when:`` holds
    for the values chosen so far, so the sampler never models values that were not used.
    ``log`` ranges sample log-uniformly (optuna cannot combine ``log`` with a ``step``: a
    stepped log range samples its grid instead).
    """
    current = spec.fixed_values()
    chosen: dict[str, Any] = {}
    for p in _parents_first(spec.tunable):
        if p.when and not is_active(p, current):
            continue
        if isinstance(p, ChoiceParam):
            enc, back = encode_choice(p)
            raw = trial.suggest_categorical(p.name, enc)
            current[p.name] = plain_value(back.get(raw, raw))
        elif p.log and p.step:
            raw = trial.suggest_categorical(p.name, p.grid())
            current[p.name] = raw
        elif isinstance(p, IntParam):
            raw = current[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            raw = current[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        chosen[p.name] = raw
    return decode(spec, chosen)


def active_params(spec: SearchSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The searched hyperparameters that apply in ``values`` (conditions met)."""
    return {p.name: values.get(p.name) for p in spec.tunable if is_active(p, values)}


def sklearn_grid(spec: SearchSpec) -> dict[str, list[Any]]:
    """A ``param_grid`` for GridSearchCV: every searched hyperparameter's values.

    Raises
    ------
    automnist.errors.SpecError
        For a continuous float range (give a step or a choice).
    """
    grid: dict[str, list[Any]] = {}
    for p in spec.tunable:
        if isinstance(p, ChoiceParam):
            grid[p.name] = [plain_value(v) for v in p.values]
        elif isinstance(p, IntParam):
            grid[p.name] = p.grid()
        elif isinstance(p, FloatParam):
            values = p.grid()
            if values is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "a grid needs explicit values for a continuous range: give a step or use choice")
            grid[p.name] = values
    return grid


def sklearn_distributions(spec: SearchSpec) -> dict[str, Any]:
    """``param_distributions`` for RandomizedSearchCV: ``log`` ranges become ``loguniform``."""
    from scipy import stats

    dists: dict[str, Any] = {}
    for p in spec.tunable:
        if isinstance(p, ChoiceParam):
            dists[p.name] = [plain_value(v) for v in p.values]
        elif isinstance(p, IntParam):
            if p.log:
                dists[p.name] = stats.randint(p.low, p.high + 1) if p.low == p.high else _IntLogUniform(p.low, p.high)
            elif p.step:
                dists[p.name] = p.grid()
            else:
                dists[p.name] = stats.randint(p.low, p.high + 1)
        elif isinstance(p, FloatParam):
            if p.step:
                dists[p.name] = p.grid()
            elif p.log:
                dists[p.name] = stats.loguniform(p.low, p.high)
            else:
                dists[p.name] = stats.uniform(p.low, p.high - p.low)
    return dists


class _IntLogUniform:
    """Integers sampled log-uniformly in [low, high] (scikit-learn calls ``rvs``)."""

    def __init__(self, low: int, high: int) -> None:
        from scipy import stats

        self.low, self.high = low, high
        self._dist = stats.loguniform(low, high + 1)

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        import numpy as np

        out = np.floor(self._dist.rvs(size=size, random_state=random_state)).astype(int)
        out = np.clip(out, self.low, self.high)
        return int(out) if size is None else out

    def __repr__(self) -> str:
        return f"IntLogUniform({self.low}, {self.high})"
