"""Parse each section of a raw spec (parsed YAML) into the frozen model.

Every rule violation raises :class:`~automnist.errors.SpecError` naming the file, the key
path, the rule and the value received; :func:`automnist.spec.parse_spec` puts the
sections together.

A parameter in ``params`` is written in one of these forms::

    kernel_size: 3                                   # fixed
    filters: [32, 64]                                # fixed (a list is a value, not a choice)
    kernel_size: {choice: [3, 5, 7]}                 # categorical
    dense_units: {int: [64, 512], step: 64}          # integer range
    learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
    learning_rate: {type: float, low: 1.0e-4, high: 0.01, log: true}   # long form
    leaky_relu_slope: {float: [0.01, 0.3], when: {activation: leaky_relu}}
    padding: [same, valid]                           # per convolution inside each block
    learning_rate: from_lr_find                      # resolved by a learning-rate range test
    learning_rate: {adam: 0.01, sgd: 0.1}            # per optimizer (fixed)

A top-level ``denoise: {epochs: 10, filters: [32, 32]}`` (or ``denoise: true``) puts a
convolutional denoising autoencoder, trained noisy -> clean on the training images, in
front of the classifier; it needs ``data.noise``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

from automnist.errors import SpecError
from automnist.records import DIRECTIONS, objective_direction
from automnist.spec.model import (
    ChoiceParam,
    Condition,
    DataSpec,
    DenoiseSpec,
    EarlyStoppingSpec,
    FinalSpec,
    FixedParam,
    FloatParam,
    IntParam,
    NoiseSpec,
    Objective,
    Param,
    SearchConfig,
)
from automnist.spec.values import freeze, is_int, is_number, short_repr, value_key
from automnist.spec.vocabulary import (
    AUTO_MAX_TRIALS,
    DEFAULTS,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_FILTERS,
    MAX_SEED,
    OBJECTIVES,
    OPTIMIZERS,
    RULES,
    STRATEGIES,
    float_rule,
    int_rule,
    rule_for,
)

#: Upper bounds of the search settings (far above any useful value).
MAX_TRIALS = 1_000_000
MAX_SUBSET = 100_000_000
MAX_TIME_BUDGET = 1e8  # seconds, about three years

__all__ = ["check_keys", "parse_data", "parse_denoise", "parse_final", "parse_objective", "parse_params", "parse_search"]


def check_keys(raw: Mapping[str, Any], known: tuple[str, ...] | set[str], source: str, path: str) -> None:
    """Raise :class:`SpecError` for the first key of ``raw`` not in ``known`` (with a hint)."""
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), list(known), n=1)
            tip = f" (did you mean {short_repr(hint[0])}?)" if hint else ""
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(source, where, f"unknown key{tip}; known keys: {', '.join(sorted(known))}")


def _fields(raw: Mapping[str, Any], cls: type, source: str, path: str) -> dict[str, Any]:
    """A section's keys as a dict, after checking each names a field of dataclass ``cls``."""
    check_keys(raw, {f.name for f in dataclasses.fields(cls)}, source, path)
    return dict(raw)


def parse_data(raw: Any, source: str) -> DataSpec:
    """The ``data:`` section (a mapping, or just a data set name)."""
    if isinstance(raw, str):
        raw = {"dataset": raw}
    if not isinstance(raw, Mapping):
        raise SpecError(source, "data", f"must be a mapping or a data set name, got {short_repr(raw)}")
    kw = _fields(raw, DataSpec, source, "data")
    ds = kw.get("dataset", "digits")
    if not isinstance(ds, str) or not ds:
        raise SpecError(source, "data.dataset", f"must be a data set name, got {short_repr(ds)}")
    sub = kw.get("subset")
    if sub is not None and (not is_int(sub) or not 20 <= sub <= MAX_SUBSET):
        raise SpecError(source, "data.subset", f"must be null or an integer from 20 to {MAX_SUBSET}, got {short_repr(sub)}")
    for key in ("validation_split", "test_split"):
        if key in kw:
            err = float_rule(0.0, 1.0, low_open=True, high_open=True)(kw[key])
            if err:
                raise SpecError(source, f"data.{key}", f"{err}, got {short_repr(kw[key])}")
    _check_seed(kw, "split_seed", source, "data")
    if kw.get("data_dir") is not None and (not isinstance(kw["data_dir"], str) or not kw["data_dir"]):
        raise SpecError(source, "data.data_dir", f"must be null or a directory path, got {short_repr(kw['data_dir'])}")
    if kw.get("noise") is not None:
        kw["noise"] = _parse_noise(kw["noise"], source)
    if kw.get("image_size") is not None:
        size = kw["image_size"]
        size = [size, size] if is_int(size) else size
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(is_int(v) and 4 <= v <= 1024 for v in size):
            raise SpecError(source, "data.image_size",
                            f"must be null, an integer or [height, width] with sides from 4 to 1024, got {short_repr(kw['image_size'])}")
        kw["image_size"] = (int(size[0]), int(size[1]))
    return DataSpec(**kw)


def _parse_noise(raw: Any, source: str) -> NoiseSpec:
    if not isinstance(raw, Mapping):
        raise SpecError(source, "data.noise", f"must be a mapping, got {short_repr(raw)}")
    if True in raw and "on" not in raw:  # YAML 1.1 reads an unquoted `on:` key as the boolean true
        raw = {("on" if k is True else k): v for k, v in raw.items()}
    kw = _fields(raw, NoiseSpec, source, "data.noise")
    kind = kw.get("kind", "gaussian")
    if kind not in ("gaussian", "salt_pepper"):
        raise SpecError(source, "data.noise.kind", f"must be gaussian or salt_pepper, got {short_repr(kind)}")
    for key, rule in (("std", float_rule(0.0, 10.0)), ("amount", float_rule(0.0, 1.0))):
        if key in kw and (err := rule(kw[key])):
            raise SpecError(source, f"data.noise.{key}", f"{err}, got {short_repr(kw[key])}")
    on = kw.get("on", ["train", "test"])
    if isinstance(on, str):
        on = [on]
    if not isinstance(on, (list, tuple)) or not on or any(o not in ("train", "test") for o in on):
        raise SpecError(source, "data.noise.on", f"must be a list of train/test, got {short_repr(on)}")
    kw["on"] = tuple(on)
    _check_seed(kw, "seed", source, "data.noise", high=MAX_SEED - 1)  # the test images use seed + 1
    return NoiseSpec(**kw)


def _check_seed(kw: Mapping[str, Any], key: str, source: str, section: str, high: int = MAX_SEED) -> None:
    """Seeds go to numpy and scikit-learn, which take integers from 0 to 2**32-1."""
    if key in kw and (not is_int(kw[key]) or not 0 <= kw[key] <= high):
        raise SpecError(source, f"{section}.{key}", f"must be an integer from 0 to {high}, got {short_repr(kw[key])}")


def parse_denoise(raw: Any, source: str) -> DenoiseSpec | None:
    """The ``denoise:`` section: None when absent or false, the defaults for true."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return DenoiseSpec()
    if not isinstance(raw, Mapping):
        raise SpecError(source, "denoise", f"must be true/false or a mapping {{epochs, filters, batch_size, learning_rate}}, got {short_repr(raw)}")
    kw = _fields(raw, DenoiseSpec, source, "denoise")
    filters = kw.get("filters", [32, 32])
    if isinstance(filters, int) and not isinstance(filters, bool):
        filters = [filters]
    if (not isinstance(filters, (list, tuple)) or not 1 <= len(filters) <= 8
            or not all(is_int(f) and 1 <= f <= MAX_FILTERS for f in filters)):
        raise SpecError(source, "denoise.filters",
                        f"must be a list of 1 to 8 integers from 1 to {MAX_FILTERS} (one per pooling level), "
                        f"got {short_repr(filters)}")
    kw["filters"] = tuple(int(f) for f in filters)
    for key, high in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
        if key in kw and (err := int_rule(1, high)(kw[key])):
            raise SpecError(source, f"denoise.{key}", f"{err}, got {short_repr(kw[key])}")
    if "learning_rate" in kw:
        if err := float_rule(0.0, 1e3, low_open=True)(kw["learning_rate"]):
            raise SpecError(source, "denoise.learning_rate", f"{err}, got {short_repr(kw['learning_rate'])}")
        kw["learning_rate"] = float(kw["learning_rate"])
    return DenoiseSpec(**kw)


def parse_search(raw: Any, source: str) -> SearchConfig:
    """The ``search:`` section: strategy and budget."""
    if not isinstance(raw, Mapping):
        raise SpecError(source, "search", f"must be a mapping, got {short_repr(raw)}")
    kw = _fields(raw, SearchConfig, source, "search")
    # a time budget and no strategy: the budget-aware strategy
    strategy = kw.setdefault("strategy", "auto" if kw.get("time_budget") is not None else "random")
    if strategy == "auto" and kw.get("time_budget") is not None:
        kw.setdefault("max_trials", AUTO_MAX_TRIALS)  # the budget decides how many trials run
    if strategy not in STRATEGIES:
        raise SpecError(source, "search.strategy", f"must be one of {', '.join(STRATEGIES)}, got {short_repr(strategy)}")
    for key, low, high in (("max_trials", 1, MAX_TRIALS), ("epochs", 1, MAX_EPOCHS), ("n_jobs", -1, 1024),
                           ("factor", 2, 100), ("repeats", 1, 1000)):
        if key in kw and (not is_int(kw[key]) or not low <= kw[key] <= high or (key == "n_jobs" and kw[key] == 0)):
            raise SpecError(source, f"search.{key}",
                            f"must be an integer from {low} to {high}{' but not 0' if key == 'n_jobs' else ''}, "
                            f"got {short_repr(kw[key])}")
    if kw.get("n_iter") is not None and (err := int_rule(1, MAX_TRIALS)(kw["n_iter"])):
        raise SpecError(source, "search.n_iter", f"{err}, got {short_repr(kw['n_iter'])}")
    if kw.get("cv") is not None and (not is_int(kw["cv"]) or not 2 <= kw["cv"] <= 100):
        raise SpecError(source, "search.cv", f"must be null or an integer from 2 to 100 (folds), got {short_repr(kw['cv'])}")
    tb = kw.get("time_budget")
    if tb is not None and (not is_number(tb) or not 0 < tb <= MAX_TIME_BUDGET):
        raise SpecError(source, "search.time_budget",
                        f"must be a positive number of seconds up to {MAX_TIME_BUDGET:g}, got {short_repr(tb)}")
    _check_seed(kw, "seed", source, "search")
    if kw.get("resource", "epochs") not in ("epochs", "n_samples"):
        raise SpecError(source, "search.resource", f"must be epochs or n_samples, got {short_repr(kw['resource'])}")
    for key in ("chain",):
        if key in kw and not isinstance(kw[key], bool):
            raise SpecError(source, f"search.{key}", f"must be true or false, got {short_repr(kw[key])}")
    alpha = kw.get("chain_alpha")
    if alpha is not None:
        if not is_number(alpha) or not 0.0 < alpha < 1.0:
            raise SpecError(source, "search.chain_alpha", f"must be null or a significance level in (0, 1), got {short_repr(alpha)}")
        if not kw.get("chain"):
            raise SpecError(source, "search.chain_alpha", "only applies to chained sweeps: set search.chain: true")
        if kw.get("repeats", 1) < 2:
            raise SpecError(source, "search.chain_alpha",
                            f"a t-test against the baseline needs search.repeats >= 2, got {short_repr(kw.get('repeats', 1))}")
        kw["chain_alpha"] = float(alpha)
    if kw.get("early_stopping") is not None:
        kw["early_stopping"] = _parse_early_stopping(kw["early_stopping"], source)
    return SearchConfig(**kw)


def _parse_early_stopping(raw: Any, source: str) -> EarlyStoppingSpec | None:
    path = "search.early_stopping"
    if raw is False:
        return None
    if raw is True:
        return EarlyStoppingSpec()
    if not isinstance(raw, Mapping):
        raise SpecError(source, path, f"must be true/false or a mapping {{patience, monitor, min_delta}}, got {short_repr(raw)}")
    kw = _fields(raw, EarlyStoppingSpec, source, path)
    if "patience" in kw and (err := int_rule(1, MAX_EPOCHS)(kw["patience"])):
        raise SpecError(source, f"{path}.patience", f"{err}, got {short_repr(kw['patience'])}")
    if kw.get("monitor", "val_loss") not in OBJECTIVES:
        raise SpecError(source, f"{path}.monitor", f"must be one of {', '.join(OBJECTIVES)}, got {short_repr(kw['monitor'])}")
    if "min_delta" in kw:
        if err := float_rule(0.0, 1.0)(kw["min_delta"]):
            raise SpecError(source, f"{path}.min_delta", f"{err}, got {short_repr(kw['min_delta'])}")
        kw["min_delta"] = float(kw["min_delta"])
    return EarlyStoppingSpec(**kw)


def parse_final(raw: Any, source: str) -> FinalSpec:
    """The ``final:`` section: refit of the best configuration and an optional ensemble."""
    if raw is None:
        return FinalSpec()
    if not isinstance(raw, Mapping):
        raise SpecError(source, "final", f"must be a mapping {{refit, ensemble}}, got {short_repr(raw)}")
    kw = _fields(raw, FinalSpec, source, "final")
    if kw.get("refit") is not None and not isinstance(kw["refit"], bool):
        raise SpecError(source, "final.refit", f"must be true or false, got {short_repr(kw['refit'])}")
    if "ensemble" in kw and (not is_int(kw["ensemble"]) or not 1 <= kw["ensemble"] <= 20):
        raise SpecError(source, "final.ensemble", f"must be an integer from 1 (no ensemble) to 20, got {short_repr(kw['ensemble'])}")
    return FinalSpec(**kw)


def parse_objective(raw: Any, source: str) -> Objective:
    """The ``objective:`` (a metric name, or ``{name, direction}``; a loss is minimised)."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise SpecError(source, "objective", f"must be a metric name or {{name, direction}}, got {short_repr(raw)}")
    check_keys(raw, ("name", "direction"), source, "objective")
    name = raw.get("name", "val_accuracy")
    if name not in OBJECTIVES:
        raise SpecError(source, "objective.name", f"must be one of {', '.join(OBJECTIVES)}, got {short_repr(name)}")
    direction = raw.get("direction", objective_direction(name))
    if direction not in DIRECTIONS:
        raise SpecError(source, "objective.direction", f"must be min or max, got {short_repr(direction)}")
    return Objective(name=name, direction=direction)


_RANGE_KEYS = {"int", "float", "choice", "type", "low", "high", "values", "value", "step", "log", "default", "when", "sampling"}


def parse_params(raw: Any, source: str) -> tuple[Param, ...]:
    """The ``params:`` section, one :data:`~automnist.spec.model.Param` per entry in file order."""
    if not isinstance(raw, Mapping):
        raise SpecError(source, "params", f"must be a mapping of hyperparameter names, got {short_repr(raw)}")
    out: list[Param] = []
    for name, value in raw.items():
        path = f"params.{name}"
        rule = rule_for(str(name))
        if rule is None:
            hint = difflib.get_close_matches(str(name), list(RULES), n=1)
            tip = f" (did you mean {short_repr(hint[0])}?)" if hint else ""
            raise SpecError(source, path, f"unknown hyperparameter{tip}")
        out.append(_parse_param(str(name), value, rule, source, path))
    names = {p.name for p in out}
    for p in out:
        for parent, _ in p.when:
            if parent not in names and parent not in DEFAULTS:
                raise SpecError(source, f"params.{p.name}.when", f"refers to unknown hyperparameter {short_repr(parent)}")
    return tuple(out)


def _parse_when(raw: Any, source: str, path: str) -> Condition:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError(source, path, f"must be a mapping {{parent: value or [values]}}, got {short_repr(raw)}")
    cond = []
    for parent, allowed in raw.items():
        vals = tuple(allowed) if isinstance(allowed, (list, tuple)) else (allowed,)
        cond.append((str(parent), vals))
    return tuple(cond)


def _parse_param(name: str, raw: Any, rule: Callable[[Any], str | None], source: str, path: str) -> Param:
    if (
        not isinstance(raw, Mapping)
        or name == "augmentation" and not (set(raw) & {"choice", "type", "value"})
        or name == "learning_rate" and bool(raw) and set(raw) <= set(OPTIMIZERS)  # {optimizer: lr}
    ):
        err = rule(raw)
        if err:
            raise SpecError(source, path, f"{err}, got {short_repr(raw)}")
        return FixedParam(name, freeze(raw))
    unknown = set(raw) - _RANGE_KEYS
    if unknown:
        raise SpecError(source, f"{path}.{sorted(unknown)[0]}", f"unknown key; a range takes {', '.join(sorted(_RANGE_KEYS))}")
    when = _parse_when(raw.get("when"), source, f"{path}.when")
    kind = raw.get("type")
    if kind is None:
        kind = next((k for k in ("choice", "int", "float") if k in raw), "fixed" if "value" in raw else None)
    if kind is None:
        raise SpecError(source, path, "a mapping needs one of choice/int/float/value (or type:)")
    log = raw.get("log", raw.get("sampling") == "log")
    if not isinstance(log, bool):
        raise SpecError(source, f"{path}.log", f"must be true or false, got {short_repr(log)}")
    if kind == "fixed":
        value = raw.get("value")
        if err := rule(value):
            raise SpecError(source, f"{path}.value", f"{err}, got {short_repr(value)}")
        return FixedParam(name, freeze(value), when)
    if kind == "choice":
        values = raw.get("choice", raw.get("values"))
        if not isinstance(values, (list, tuple)) or not values:
            raise SpecError(source, f"{path}.choice", f"must be a non-empty list, got {short_repr(values)}")
        for i, v in enumerate(values):
            if err := rule(v):
                raise SpecError(source, f"{path}.choice[{i}]", f"{err}, got {short_repr(v)}")
        frozen = tuple(freeze(v) for v in values)
        if len(set(map(value_key, frozen))) != len(frozen):
            raise SpecError(source, f"{path}.choice", f"values must be distinct, got {short_repr(values)}")
        default = raw.get("default")
        if default is not None and value_key(freeze(default)) not in set(map(value_key, frozen)):
            raise SpecError(source, f"{path}.default", f"must be one of the choices, got {short_repr(default)}")
        return ChoiceParam(name, frozen, freeze(default), when)
    if kind not in ("int", "float"):
        raise SpecError(source, f"{path}.type", f"must be fixed, choice, int or float, got {short_repr(kind)}")
    bounds = raw.get(kind)
    if bounds is None:
        bounds = [raw.get("low"), raw.get("high")]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise SpecError(source, f"{path}.{kind}", f"must be [low, high], got {short_repr(bounds)}")
    low, high = bounds
    check = is_int if kind == "int" else is_number
    for label, b in (("low", low), ("high", high)):
        if not check(b):
            raise SpecError(source, f"{path}.{label}", f"must be {'an integer' if kind == 'int' else 'a number'}, got {short_repr(b)}")
    if low > high:
        raise SpecError(source, path, f"needs low <= high, got low={short_repr(low)}, high={short_repr(high)}")
    if log and low <= 0:
        raise SpecError(source, f"{path}.low", f"log scale needs low > 0, got {short_repr(low)}")
    step = raw.get("step")
    if step is not None and (not check(step) or step <= 0):
        raise SpecError(source, f"{path}.step", f"must be a positive {'integer' if kind == 'int' else 'number'}, got {short_repr(step)}")
    if step is not None and log:
        raise SpecError(source, f"{path}.step", "cannot combine step with log scale")
    for label, b in (("low", low), ("high", high)):
        if err := rule(b):
            raise SpecError(source, f"{path}.{label}", f"{err}, got {short_repr(b)}")
    default = raw.get("default")
    if default is not None and not (check(default) and low <= default <= high):
        raise SpecError(source, f"{path}.default", f"must lie in [{low}, {high}], got {short_repr(default)}")
    if kind == "int":
        return IntParam(name, int(low), int(high), step, log, default, when)
    return FloatParam(name, float(low), float(high), None if step is None else float(step), log,
                      None if default is None else float(default), when)
