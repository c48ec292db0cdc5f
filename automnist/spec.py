"""Parse and validate search-space specs (YAML) into frozen dataclasses.

Raw YAML dicts never travel past this module: :func:`load_spec` / :func:`parse_spec`
return a :class:`SearchSpec`, and every rule violation raises :class:`SpecError`
naming the file, the key path, the rule and the value received.

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
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from automnist.errors import SpecError

__all__ = [
    "ChoiceParam",
    "DataSpec",
    "DenoiseSpec",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "NoiseSpec",
    "Objective",
    "Param",
    "SearchConfig",
    "SearchSpec",
    "DEFAULTS",
    "LR_FROM_LR_FIND",
    "STRATEGIES",
    "load_spec",
    "parse_spec",
]

# --------------------------------------------------------------------------- values

ACTIVATIONS = ("relu", "elu", "selu", "tanh", "sigmoid", "gelu", "swish", "leaky_relu")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad", "adadelta", "nadam", "adamax")
LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence")
POOLINGS = ("max", "average", "none")
PADDINGS = ("valid", "same")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "uniform")
MODELS = ("cnn", "mlp")
STRATEGIES = (
    "random",
    "bayesian",
    "hyperband",
    "grid",
    "sklearn-grid",
    "sklearn-random",
    "sklearn-halving",
    "sweep",
)
AUGMENTATION_KEYS = ("rotation", "shift", "zoom", "shear", "horizontal_flip")
#: ``learning_rate: from_lr_find`` asks the search to run (or reuse) a learning-rate range test.
LR_FROM_LR_FIND = "from_lr_find"

#: Every hyperparameter the builder understands, with its default value.
DEFAULTS: dict[str, Any] = {
    # convolutional part (cnn only)
    "conv_layers": 2,  # conv blocks; each is `convs_per_block` convolutions then pooling
    "convs_per_block": 1,
    "filters": [32, 64],  # per block; an int means the same for every block
    "kernel_size": 3,  # int, or a list per block
    "strides": 1,  # int, or a list: one value per convolution inside each block
    "padding": "valid",  # valid/same, or a list: one value per convolution inside each block
    "pooling": "max",
    "pool_size": 2,
    "conv_dropout": 0.0,  # after each block's pooling
    "batch_norm": False,
    # dense part
    "dense_layers": 1,
    "units": 128,  # int, or a list per dense layer
    "dropout": 0.0,  # after each dense layer
    "activation": "relu",
    "leaky_relu_slope": 0.01,
    "kernel_initializer": "glorot_uniform",
    # training
    "optimizer": "adam",
    "learning_rate": 1e-3,  # a number, "from_lr_find", or {optimizer: learning rate}
    "momentum": 0.0,
    "nesterov": False,
    "loss": "categorical_crossentropy",
    "batch_size": 32,
    "epochs": None,  # None: use search.epochs
    "validation_split": None,  # None: use data.validation_split
    "augmentation": None,  # None / false, or {rotation, shift, zoom, shear, horizontal_flip}
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_rule(low: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if _is_int(v) and v >= low else f"must be an integer >= {low}"

    return check


def _int_or_list_rule(low: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if _is_int(v) and v >= low:
            return None
        if isinstance(v, (list, tuple)) and v and all(_is_int(x) and x >= low for x in v):
            return None
        return f"must be an integer >= {low} or a non-empty list of them"

    return check


def _float_rule(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[Any], str | None]:
    lo_s = "(" if low_open else "["
    hi_s = ")" if high_open else "]"

    def check(v: Any) -> str | None:
        if not _is_num(v):
            return f"must be a number in {lo_s}{low}, {high}{hi_s}"
        if (v < low or (low_open and v == low)) or (v > high or (high_open and v == high)):
            return f"must be in {lo_s}{low}, {high}{hi_s}"
        return None

    return check


def _enum_rule(values: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in values else f"must be one of {', '.join(values)}"

    return check


def _enum_or_list_rule(values: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if v in values or (isinstance(v, (list, tuple)) and v and all(x in values for x in v)):
            return None
        return f"must be one of {', '.join(values)} or a non-empty list of them"

    return check


def _learning_rate_rule(v: Any) -> str | None:
    number = _float_rule(0.0, 1e3, low_open=True)
    if v == LR_FROM_LR_FIND:
        return None
    if isinstance(v, Mapping):
        if not v:
            return "a per-optimizer mapping needs at least one entry"
        for key, lr in v.items():
            if key not in OPTIMIZERS:
                return f"a per-optimizer mapping needs optimizer names as keys ({', '.join(OPTIMIZERS)}), got key {key!r}"
            if err := number(lr):
                return f"learning_rate.{key} {err}"
        return None
    if err := number(v):
        return f"{err}, {LR_FROM_LR_FIND!r} or a mapping {{optimizer: learning rate}}"
    return None


def _bool_rule(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _optional(rule: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v is None else rule(v)

    return check


def _augmentation_rule(v: Any) -> str | None:
    if v is None or v is False:
        return None
    if not isinstance(v, Mapping):
        return "must be null/false or a mapping with keys " + ", ".join(AUGMENTATION_KEYS)
    for key, val in v.items():
        if key not in AUGMENTATION_KEYS:
            return f"unknown augmentation key {key!r} (known: {', '.join(AUGMENTATION_KEYS)})"
        if key == "horizontal_flip":
            if not isinstance(val, bool):
                return "augmentation.horizontal_flip must be true or false"
        elif key in ("rotation", "shear"):
            if not _is_num(val) or not 0 <= val <= 180:
                return f"augmentation.{key} is in degrees and must be in [0, 180]"
        elif not _is_num(val) or not 0 <= val < 1:
            return f"augmentation.{key} is a fraction and must be in [0, 1)"
    return None


RULES: dict[str, Callable[[Any], str | None]] = {
    "conv_layers": _int_rule(0),
    "convs_per_block": _int_rule(1),
    "filters": _int_or_list_rule(1),
    "kernel_size": _int_or_list_rule(1),
    "strides": _int_or_list_rule(1),
    "padding": _enum_or_list_rule(PADDINGS),
    "pooling": _enum_rule(POOLINGS),
    "pool_size": _int_rule(1),
    "conv_dropout": _float_rule(0.0, 1.0, high_open=True),
    "batch_norm": _bool_rule,
    "dense_layers": _int_rule(0),
    "units": _int_or_list_rule(1),
    "dropout": _float_rule(0.0, 1.0, high_open=True),
    "activation": _enum_rule(ACTIVATIONS),
    "leaky_relu_slope": _float_rule(0.0, 1.0),
    "kernel_initializer": _enum_rule(INITIALIZERS),
    "optimizer": _enum_rule(OPTIMIZERS),
    "learning_rate": _learning_rate_rule,
    "momentum": _float_rule(0.0, 1.0, high_open=True),
    "nesterov": _bool_rule,
    "loss": _enum_rule(LOSSES),
    "batch_size": _int_rule(1),
    "epochs": _optional(_int_rule(1)),
    "validation_split": _optional(_float_rule(0.0, 1.0, low_open=True, high_open=True)),
    "augmentation": _augmentation_rule,
}
# Per-block / per-layer overrides: filters_1, kernel_size_2, units_1 ... (1-based)
_INDEXED = {"filters": "filters", "kernel_size": "kernel_size", "units": "units"}


def _rule_for(name: str) -> Callable[[Any], str | None] | None:
    if name in RULES:
        return RULES[name]
    base, _, idx = name.rpartition("_")
    if base in _INDEXED and idx.isdigit() and int(idx) >= 1:
        return _int_rule(1)
    return None


# --------------------------------------------------------------------------- params

Condition = tuple[tuple[str, tuple[Any, ...]], ...]


@dataclass(frozen=True)
class FixedParam:
    """A hyperparameter held at one value."""

    name: str
    value: Any
    when: Condition = ()

    def to_config(self) -> Any:
        if self.when:
            return {"value": _plain(self.value), "when": _when_config(self.when)}
        return _plain(self.value)


@dataclass(frozen=True)
class ChoiceParam:
    """A categorical hyperparameter; values may be scalars, lists or mappings."""

    name: str
    values: tuple[Any, ...]
    default: Any = None
    when: Condition = ()

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"choice": [_plain(v) for v in self.values]}
        if self.default is not None:
            out["default"] = _plain(self.default)
        if self.when:
            out["when"] = _when_config(self.when)
        return out


@dataclass(frozen=True)
class IntParam:
    """An integer range ``[low, high]`` (inclusive) with an optional step or log sampling."""

    name: str
    low: int
    high: int
    step: int | None = None
    log: bool = False
    default: int | None = None
    when: Condition = ()

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"int": [self.low, self.high]}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.when:
            out["when"] = _when_config(self.when)
        return out

    def grid(self) -> list[int]:
        """All values of the range (its step, or 1)."""
        step = self.step or 1
        return list(range(self.low, self.high + 1, step))


@dataclass(frozen=True)
class FloatParam:
    """A real range ``[low, high]``; ``log`` samples log-uniformly, ``step`` discretises."""

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False
    default: float | None = None
    when: Condition = ()

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"float": [self.low, self.high]}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.when:
            out["when"] = _when_config(self.when)
        return out

    def grid(self) -> list[float] | None:
        """All values of a stepped range, or None when the range is continuous."""
        if self.step is None:
            return None
        n = int(round((self.high - self.low) / self.step))
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]


Param = Union[FixedParam, ChoiceParam, IntParam, FloatParam]


@dataclass(frozen=True)
class NoiseSpec:
    """Noise added to images: ``gaussian`` (std) or ``salt_pepper`` (amount)."""

    kind: str = "gaussian"
    std: float = 0.5
    amount: float = 0.1
    on: tuple[str, ...] = ("train", "test")
    seed: int = 0


@dataclass(frozen=True)
class DenoiseSpec:
    """A convolutional denoising autoencoder in front of the classifier (seed 000, Q3).

    Trained once per search to map noisy training images (``data.noise``) to the clean
    ones, then applied to the training and test images the classifier sees.
    """

    filters: tuple[int, ...] = (32, 32)  # encoder Conv2D + MaxPooling2D per entry
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3


@dataclass(frozen=True)
class DataSpec:
    """Where the images come from and how they are split."""

    dataset: str = "digits"
    subset: int | None = None
    validation_split: float = 0.2
    test_split: float = 0.2  # only for data sets without their own test split
    split_seed: int = 0
    data_dir: str | None = None
    noise: NoiseSpec | None = None
    image_size: tuple[int, int] | None = None  # (height, width) the images are resized to at load


@dataclass(frozen=True)
class SearchConfig:
    """How to search and with what budget."""

    strategy: str = "random"
    max_trials: int = 10
    epochs: int = 5
    time_budget: float | None = None  # seconds
    seed: int = 0
    cv: int | None = None  # k-fold cross-validation per trial
    n_jobs: int = 1  # scikit-learn strategies
    factor: int = 3  # hyperband / successive halving
    resource: str = "epochs"  # successive halving: epochs or n_samples
    n_iter: int | None = None  # sklearn-random; defaults to max_trials
    repeats: int = 1  # sweep: seeds per value
    chain: bool = False  # sweep: carry each winner into the baseline
    chain_alpha: float | None = None  # sweep + chain: carry a winner only if Welch p < alpha vs the baseline value


@dataclass(frozen=True)
class Objective:
    """The metric a search optimises."""

    name: str = "val_accuracy"
    direction: str = "max"


@dataclass(frozen=True)
class SearchSpec:
    """A validated search-space spec.

    Attributes
    ----------
    name : str
        The spec's name, used for default run names.
    model : {"cnn", "mlp"}
    data, search, objective :
        Data set, strategy/budget and objective.
    params : tuple of Param
        Every hyperparameter mentioned in the spec, in file order.
    source : str
        The file it came from (or ``"<dict>"``); used in error messages.
    """

    name: str
    model: str = "cnn"
    description: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    params: tuple[Param, ...] = ()
    search: SearchConfig = field(default_factory=SearchConfig)
    objective: Objective = field(default_factory=Objective)
    denoise: DenoiseSpec | None = None
    source: str = "<dict>"

    # -- views
    @property
    def param_map(self) -> dict[str, Param]:
        return {p.name: p for p in self.params}

    @property
    def tunable(self) -> tuple[Param, ...]:
        """The searched hyperparameters (everything but fixed ones)."""
        return tuple(p for p in self.params if not isinstance(p, FixedParam))

    def fixed_values(self) -> dict[str, Any]:
        """Builder defaults overlaid with the spec's fixed values."""
        values = {k: _copy(v) for k, v in DEFAULTS.items()}
        for p in self.params:
            if isinstance(p, FixedParam):
                values[p.name] = _copy(p.value)
        return values

    def default_values(self) -> dict[str, Any]:
        """A complete configuration: fixed values plus each searched one's default
        (its ``default``, else the first choice, else the low end of its range)."""
        values = self.fixed_values()
        for p in self.tunable:
            values[p.name] = _copy(param_default(p))
        return values

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Fill a partial configuration (e.g. from a tuner) with fixed and default values."""
        out = self.default_values()
        out.update({k: _copy(v) for k, v in values.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping; ``parse_spec(spec.to_dict())`` gives an equal spec."""
        data = {k: _plain(v) for k, v in dataclasses.asdict(self.data).items() if k != "noise"}
        if self.data.image_size is None:  # only when set, so other specs keep their hash
            del data["image_size"]
        else:
            data["image_size"] = list(self.data.image_size)
        if self.data.noise is not None:
            noise = dataclasses.asdict(self.data.noise)
            noise["on"] = list(noise["on"])
            data["noise"] = noise
        out = {
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "data": data,
            "params": {p.name: p.to_config() for p in self.params},
            "search": {k: v for k, v in dataclasses.asdict(self.search).items()
                       if k != "chain_alpha" or v is not None},  # unset: other specs keep their hash
            "objective": dataclasses.asdict(self.objective),
        }
        if self.denoise is not None:  # only when set, so other specs keep their hash
            denoise = dataclasses.asdict(self.denoise)
            denoise["filters"] = list(denoise["filters"])
            out["denoise"] = denoise
        return out

    @property
    def hash(self) -> str:
        """A short content hash of the canonical spec (ignores comments, key order)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **overrides: Any) -> SearchSpec:
        """A copy with ``search.*``, ``data.*`` or top-level fields overridden.

        ``spec.replace(strategy="grid", max_trials=3, dataset="digits", subset=500)``.
        ``None`` values are ignored, so CLI flags can be passed straight through.
        ``denoise_epochs`` sets ``denoise.epochs`` (the spec must have ``denoise:``).
        Overrides are validated like the file itself.
        """
        raw = self.to_dict()
        search_keys = {f.name for f in dataclasses.fields(SearchConfig)}
        data_keys = {f.name for f in dataclasses.fields(DataSpec)}
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "denoise_epochs":
                if "denoise" not in raw:
                    raise SpecError(self.source, "denoise.epochs", "the spec has no denoise: section to override")
                raw["denoise"]["epochs"] = value
            elif key in search_keys:
                raw["search"][key] = value
            elif key in data_keys:
                raw["data"][key] = value
            elif key in ("name", "model", "description", "objective"):
                raw[key] = value
            else:
                raise SpecError(self.source, key, "unknown override")
        return parse_spec(raw, source=self.source)


def param_default(p: Param) -> Any:
    """The value a searched parameter takes when it is not searched (baseline)."""
    if isinstance(p, FixedParam):
        return p.value
    if p.default is not None:
        return p.default
    if isinstance(p, ChoiceParam):
        return p.values[0]
    return p.low


def is_active(p: Param, values: Mapping[str, Any]) -> bool:
    """Whether a conditional parameter applies given its parents' values."""
    return all(values.get(parent) in allowed for parent, allowed in p.when)


# --------------------------------------------------------------------------- parsing


def load_spec(path: str | Path) -> SearchSpec:
    """Read and validate a YAML spec file.

    Raises
    ------
    SpecError
        If the file is missing, is not valid YAML, or breaks a rule.
    """
    import yaml

    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(source, "", "file not found") from None
    except OSError as exc:
        raise SpecError(source, "", f"cannot read file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, where, f"invalid YAML: {problem}") from None
    if raw is None:
        raise SpecError(source, "", "the file is empty")
    spec = parse_spec(raw, source=source)
    if not spec.name:
        spec = dataclasses.replace(spec, name=path.stem)
    return spec


_TOP_KEYS = ("name", "model", "description", "data", "params", "search", "objective", "denoise")


def parse_spec(raw: Any, source: str = "<dict>") -> SearchSpec:
    """Validate a mapping (parsed YAML) into a :class:`SearchSpec`."""
    if not isinstance(raw, Mapping):
        raise SpecError(source, "", f"a spec must be a mapping, got {type(raw).__name__}")
    _check_keys(raw, _TOP_KEYS, source, "")
    name = raw.get("name") or ""
    if not isinstance(name, str):
        raise SpecError(source, "name", f"must be a string, got {name!r}")
    model = raw.get("model", "cnn")
    if model not in MODELS:
        raise SpecError(source, "model", f"must be one of {', '.join(MODELS)}, got {model!r}")
    description = raw.get("description") or ""
    data = _parse_data(raw.get("data") or {}, source)
    params = _parse_params(raw.get("params") or {}, source)
    search = _parse_search(raw.get("search") or {}, source)
    objective = _parse_objective(raw.get("objective", "val_accuracy"), source)
    denoise = _parse_denoise(raw.get("denoise"), source)
    spec = SearchSpec(
        name=name,
        model=model,
        description=str(description).strip(),
        data=data,
        params=params,
        search=search,
        objective=objective,
        denoise=denoise,
        source=source,
    )
    _check_cross(spec)
    return spec


def _check_keys(raw: Mapping[str, Any], known: tuple[str, ...] | set[str], source: str, path: str) -> None:
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), list(known), n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(source, where, f"unknown key{tip}; known keys: {', '.join(sorted(known))}")


def _parse_data(raw: Any, source: str) -> DataSpec:
    if isinstance(raw, str):
        raw = {"dataset": raw}
    if not isinstance(raw, Mapping):
        raise SpecError(source, "data", f"must be a mapping or a data set name, got {raw!r}")
    keys = {f.name for f in dataclasses.fields(DataSpec)}
    _check_keys(raw, keys, source, "data")
    kw = dict(raw)
    ds = kw.get("dataset", "digits")
    if not isinstance(ds, str) or not ds:
        raise SpecError(source, "data.dataset", f"must be a data set name, got {ds!r}")
    sub = kw.get("subset")
    if sub is not None and (not _is_int(sub) or sub < 20):
        raise SpecError(source, "data.subset", f"must be null or an integer >= 20, got {sub!r}")
    for key in ("validation_split", "test_split"):
        if key in kw:
            err = _float_rule(0.0, 1.0, low_open=True, high_open=True)(kw[key])
            if err:
                raise SpecError(source, f"data.{key}", f"{err}, got {kw[key]!r}")
    if "split_seed" in kw and not _is_int(kw["split_seed"]):
        raise SpecError(source, "data.split_seed", f"must be an integer, got {kw['split_seed']!r}")
    if kw.get("noise") is not None:
        kw["noise"] = _parse_noise(kw["noise"], source)
    if kw.get("image_size") is not None:
        size = kw["image_size"]
        size = [size, size] if _is_int(size) else size
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(v) and 4 <= v <= 1024 for v in size):
            raise SpecError(source, "data.image_size",
                            f"must be null, an integer or [height, width] with sides from 4 to 1024, got {kw['image_size']!r}")
        kw["image_size"] = (int(size[0]), int(size[1]))
    return DataSpec(**kw)


def _parse_noise(raw: Any, source: str) -> NoiseSpec:
    if not isinstance(raw, Mapping):
        raise SpecError(source, "data.noise", f"must be a mapping, got {raw!r}")
    if True in raw and "on" not in raw:  # YAML 1.1 reads an unquoted `on:` key as the boolean true
        raw = {("on" if k is True else k): v for k, v in raw.items()}
    keys = {f.name for f in dataclasses.fields(NoiseSpec)}
    _check_keys(raw, keys, source, "data.noise")
    kw = dict(raw)
    kind = kw.get("kind", "gaussian")
    if kind not in ("gaussian", "salt_pepper"):
        raise SpecError(source, "data.noise.kind", f"must be gaussian or salt_pepper, got {kind!r}")
    for key, rule in (("std", _float_rule(0.0, 10.0)), ("amount", _float_rule(0.0, 1.0))):
        if key in kw and (err := rule(kw[key])):
            raise SpecError(source, f"data.noise.{key}", f"{err}, got {kw[key]!r}")
    on = kw.get("on", ["train", "test"])
    if isinstance(on, str):
        on = [on]
    if not isinstance(on, (list, tuple)) or not on or any(o not in ("train", "test") for o in on):
        raise SpecError(source, "data.noise.on", f"must be a list of train/test, got {on!r}")
    kw["on"] = tuple(on)
    return NoiseSpec(**kw)


def _parse_denoise(raw: Any, source: str) -> DenoiseSpec | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return DenoiseSpec()
    if not isinstance(raw, Mapping):
        raise SpecError(source, "denoise", f"must be true/false or a mapping {{epochs, filters, batch_size, learning_rate}}, got {raw!r}")
    keys = {f.name for f in dataclasses.fields(DenoiseSpec)}
    _check_keys(raw, keys, source, "denoise")
    kw = dict(raw)
    filters = kw.get("filters", [32, 32])
    if isinstance(filters, int) and not isinstance(filters, bool):
        filters = [filters]
    if not isinstance(filters, (list, tuple)) or not filters or not all(_is_int(f) and f >= 1 for f in filters):
        raise SpecError(source, "denoise.filters", f"must be a non-empty list of integers >= 1 (one per pooling level), got {filters!r}")
    kw["filters"] = tuple(int(f) for f in filters)
    for key in ("epochs", "batch_size"):
        if key in kw and (not _is_int(kw[key]) or kw[key] < 1):
            raise SpecError(source, f"denoise.{key}", f"must be an integer >= 1, got {kw[key]!r}")
    if "learning_rate" in kw:
        if err := _float_rule(0.0, 1e3, low_open=True)(kw["learning_rate"]):
            raise SpecError(source, "denoise.learning_rate", f"{err}, got {kw['learning_rate']!r}")
        kw["learning_rate"] = float(kw["learning_rate"])
    return DenoiseSpec(**kw)


def _parse_search(raw: Any, source: str) -> SearchConfig:
    if not isinstance(raw, Mapping):
        raise SpecError(source, "search", f"must be a mapping, got {raw!r}")
    keys = {f.name for f in dataclasses.fields(SearchConfig)}
    _check_keys(raw, keys, source, "search")
    kw = dict(raw)
    strategy = kw.get("strategy", "random")
    if strategy not in STRATEGIES:
        raise SpecError(source, "search.strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    for key, low in (("max_trials", 1), ("epochs", 1), ("n_jobs", -1), ("factor", 2), ("repeats", 1)):
        if key in kw and (not _is_int(kw[key]) or kw[key] < low or (key == "n_jobs" and kw[key] == 0)):
            raise SpecError(source, f"search.{key}", f"must be an integer >= {low}, got {kw[key]!r}")
    if kw.get("n_iter") is not None and (not _is_int(kw["n_iter"]) or kw["n_iter"] < 1):
        raise SpecError(source, "search.n_iter", f"must be an integer >= 1, got {kw['n_iter']!r}")
    if kw.get("cv") is not None and (not _is_int(kw["cv"]) or kw["cv"] < 2):
        raise SpecError(source, "search.cv", f"must be null or an integer >= 2 (folds), got {kw['cv']!r}")
    tb = kw.get("time_budget")
    if tb is not None and (not _is_num(tb) or tb <= 0):
        raise SpecError(source, "search.time_budget", f"must be a positive number of seconds, got {tb!r}")
    if "seed" in kw and not _is_int(kw["seed"]):
        raise SpecError(source, "search.seed", f"must be an integer, got {kw['seed']!r}")
    if kw.get("resource", "epochs") not in ("epochs", "n_samples"):
        raise SpecError(source, "search.resource", f"must be epochs or n_samples, got {kw['resource']!r}")
    for key in ("chain",):
        if key in kw and not isinstance(kw[key], bool):
            raise SpecError(source, f"search.{key}", f"must be true or false, got {kw[key]!r}")
    alpha = kw.get("chain_alpha")
    if alpha is not None:
        if not _is_num(alpha) or not 0.0 < alpha < 1.0:
            raise SpecError(source, "search.chain_alpha", f"must be null or a significance level in (0, 1), got {alpha!r}")
        if not kw.get("chain"):
            raise SpecError(source, "search.chain_alpha", "only applies to chained sweeps: set search.chain: true")
        if kw.get("repeats", 1) < 2:
            raise SpecError(source, "search.chain_alpha",
                            f"a t-test against the baseline needs search.repeats >= 2, got {kw.get('repeats', 1)!r}")
        kw["chain_alpha"] = float(alpha)
    return SearchConfig(**kw)


def _parse_objective(raw: Any, source: str) -> Objective:
    known = ("val_accuracy", "val_loss", "accuracy", "loss")
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise SpecError(source, "objective", f"must be a metric name or {{name, direction}}, got {raw!r}")
    _check_keys(raw, ("name", "direction"), source, "objective")
    name = raw.get("name", "val_accuracy")
    if name not in known:
        raise SpecError(source, "objective.name", f"must be one of {', '.join(known)}, got {name!r}")
    direction = raw.get("direction", "min" if name.endswith("loss") else "max")
    if direction not in ("min", "max"):
        raise SpecError(source, "objective.direction", f"must be min or max, got {direction!r}")
    return Objective(name=name, direction=direction)


_RANGE_KEYS = {"int", "float", "choice", "type", "low", "high", "values", "value", "step", "log", "default", "when", "sampling"}


def _parse_params(raw: Any, source: str) -> tuple[Param, ...]:
    if not isinstance(raw, Mapping):
        raise SpecError(source, "params", f"must be a mapping of hyperparameter names, got {raw!r}")
    out: list[Param] = []
    for name, value in raw.items():
        path = f"params.{name}"
        rule = _rule_for(str(name))
        if rule is None:
            hint = difflib.get_close_matches(str(name), list(RULES), n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SpecError(source, path, f"unknown hyperparameter{tip}")
        out.append(_parse_param(str(name), value, rule, source, path))
    names = {p.name for p in out}
    for p in out:
        for parent, _ in p.when:
            if parent not in names and parent not in DEFAULTS:
                raise SpecError(source, f"params.{p.name}.when", f"refers to unknown hyperparameter {parent!r}")
    return tuple(out)


def _parse_when(raw: Any, source: str, path: str) -> Condition:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError(source, path, f"must be a mapping {{parent: value or [values]}}, got {raw!r}")
    cond = []
    for parent, allowed in raw.items():
        vals = tuple(allowed) if isinstance(allowed, (list, tuple)) else (allowed,)
        cond.append((str(parent), vals))
    return tuple(cond)


def _when_config(cond: Condition) -> dict[str, Any]:
    return {parent: list(vals) if len(vals) != 1 else vals[0] for parent, vals in cond}


def _parse_param(name: str, raw: Any, rule: Callable[[Any], str | None], source: str, path: str) -> Param:
    if (
        not isinstance(raw, Mapping)
        or name == "augmentation" and not (set(raw) & {"choice", "type", "value"})
        or name == "learning_rate" and bool(raw) and set(raw) <= set(OPTIMIZERS)  # {optimizer: lr}
    ):
        err = rule(raw)
        if err:
            raise SpecError(source, path, f"{err}, got {raw!r}")
        return FixedParam(name, _freeze(raw))
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
        raise SpecError(source, f"{path}.log", f"must be true or false, got {log!r}")
    if kind == "fixed":
        value = raw.get("value")
        if err := rule(value):
            raise SpecError(source, f"{path}.value", f"{err}, got {value!r}")
        return FixedParam(name, _freeze(value), when)
    if kind == "choice":
        values = raw.get("choice", raw.get("values"))
        if not isinstance(values, (list, tuple)) or not values:
            raise SpecError(source, f"{path}.choice", f"must be a non-empty list, got {values!r}")
        for i, v in enumerate(values):
            if err := rule(v):
                raise SpecError(source, f"{path}.choice[{i}]", f"{err}, got {v!r}")
        frozen = tuple(_freeze(v) for v in values)
        if len(set(map(_key, frozen))) != len(frozen):
            raise SpecError(source, f"{path}.choice", f"values must be distinct, got {values!r}")
        default = raw.get("default")
        if default is not None and _key(_freeze(default)) not in set(map(_key, frozen)):
            raise SpecError(source, f"{path}.default", f"must be one of the choices, got {default!r}")
        return ChoiceParam(name, frozen, _freeze(default), when)
    if kind not in ("int", "float"):
        raise SpecError(source, f"{path}.type", f"must be fixed, choice, int or float, got {kind!r}")
    bounds = raw.get(kind)
    if bounds is None:
        bounds = [raw.get("low"), raw.get("high")]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise SpecError(source, f"{path}.{kind}", f"must be [low, high], got {bounds!r}")
    low, high = bounds
    check = _is_int if kind == "int" else _is_num
    for label, b in (("low", low), ("high", high)):
        if not check(b):
            raise SpecError(source, f"{path}.{label}", f"must be {'an integer' if kind == 'int' else 'a number'}, got {b!r}")
    if low > high:
        raise SpecError(source, path, f"needs low <= high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise SpecError(source, f"{path}.low", f"log scale needs low > 0, got {low!r}")
    step = raw.get("step")
    if step is not None and (not check(step) or step <= 0):
        raise SpecError(source, f"{path}.step", f"must be a positive {'integer' if kind == 'int' else 'number'}, got {step!r}")
    if step is not None and log:
        raise SpecError(source, f"{path}.step", "cannot combine step with log scale")
    for label, b in (("low", low), ("high", high)):
        if err := rule(b):
            raise SpecError(source, f"{path}.{label}", f"{err}, got {b!r}")
    default = raw.get("default")
    if default is not None and not (check(default) and low <= default <= high):
        raise SpecError(source, f"{path}.default", f"must lie in [{low}, {high}], got {default!r}")
    if kind == "int":
        return IntParam(name, int(low), int(high), step, log, default, when)
    return FloatParam(name, float(low), float(high), None if step is None else float(step), log,
                      None if default is None else float(default), when)


def _check_cross(spec: SearchSpec) -> None:
    if spec.model == "mlp":
        for p in spec.tunable:
            if p.name in ("conv_layers", "convs_per_block", "filters", "kernel_size", "pooling", "pool_size", "padding", "strides", "conv_dropout"):
                raise SpecError(spec.source, f"params.{p.name}", "is a convolutional hyperparameter; the mlp model has no conv layers")
    strategy = spec.search.strategy
    pmap = spec.param_map
    lr = pmap.get("learning_rate")
    if lr is not None and not isinstance(lr, FixedParam):
        values = lr.values if isinstance(lr, ChoiceParam) else ()
        if any(v == LR_FROM_LR_FIND for v in values):
            raise SpecError(spec.source, "params.learning_rate",
                            f"{LR_FROM_LR_FIND!r} is only allowed as the fixed value (learning_rate: {LR_FROM_LR_FIND})")
    if isinstance(lr, FixedParam) and isinstance(lr.value, Mapping):
        opt = pmap.get("optimizer")
        wanted = [DEFAULTS["optimizer"]] if opt is None else list(opt.values) if isinstance(opt, ChoiceParam) else [opt.value]
        missing = [o for o in wanted if isinstance(o, str) and o not in lr.value]
        if missing:
            raise SpecError(spec.source, "params.learning_rate",
                            f"the per-optimizer mapping has no learning rate for optimizer {missing[0]!r}, got {_plain(lr.value)!r}")
    if spec.denoise is not None and spec.data.noise is None:
        raise SpecError(spec.source, "denoise",
                        "needs data.noise: the autoencoder learns to map noisy training images to the clean ones")
    if strategy == "sweep":
        for p in spec.tunable:
            if isinstance(p, FloatParam) and p.step is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "a sweep trains every value of each hyperparameter: give the float range a step or use choice")
    if strategy == "grid":
        for p in spec.tunable:
            if isinstance(p, FloatParam) and p.step is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "grid search needs discrete values: give a step or use choice")
    if strategy in ("sklearn-grid",):
        for p in spec.tunable:
            if isinstance(p, FloatParam) and p.step is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "sklearn-grid needs explicit values for a continuous range: give a step or use choice")
            if p.when:
                raise SpecError(spec.source, f"params.{p.name}.when",
                                "conditional parameters are not supported by scikit-learn strategies")
    if strategy in ("sklearn-random", "sklearn-halving"):
        for p in spec.tunable:
            if p.when:
                raise SpecError(spec.source, f"params.{p.name}.when",
                                "conditional parameters are not supported by scikit-learn strategies")


# --------------------------------------------------------------------------- helpers


def _freeze(v: Any) -> Any:
    """Make YAML values hashable and immutable: lists -> tuples, dicts -> sorted item tuples kept as dict."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, Mapping):
        return _FrozenDict({str(k): _freeze(x) for k, x in v.items()})
    return v


class _FrozenDict(dict):  # a dict that hashes, so it can sit in a frozen dataclass
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _immutable(self, *a: Any, **k: Any) -> None:
        raise TypeError("spec values are immutable")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _immutable  # type: ignore[assignment]


def _plain(v: Any) -> Any:
    """Back to plain YAML/JSON types."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _copy(v: Any) -> Any:
    return _plain(v)


def _key(v: Any) -> str:
    return json.dumps(_plain(v), sort_keys=True)


def value_label(v: Any) -> str:
    """A short, stable text for a hyperparameter value (tables, KT choice keys)."""
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return "-".join(value_label(x) for x in v)
    if isinstance(v, Mapping):
        return ",".join(f"{k}={value_label(x)}" for k, x in sorted(v.items())) or "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
