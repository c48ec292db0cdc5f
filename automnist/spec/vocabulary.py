"""The spec vocabulary: known names, every hyperparameter's default and its value rule.

``RULES`` is the validation table: one check per hyperparameter, returning None or the
broken rule as text (scikit-learn's ``_parameter_constraints`` works the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from automnist.spec.values import is_int, is_number

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATION_KEYS",
    "CONV_PARAMS",
    "DEFAULTS",
    "INITIALIZERS",
    "LOSSES",
    "LR_FROM_LR_FIND",
    "MODELS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "PADDINGS",
    "POOLINGS",
    "RULES",
    "STRATEGIES",
    "AUTO_MAX_TRIALS",
    "TOP_KEYS",
    "INDEXED",
    "MAX_SEED",
    "float_rule",
    "int_rule",
    "rule_for",
    "split_indexed",
]

#: The top-level keys of a spec.
TOP_KEYS = ("name", "model", "description", "data", "params", "search", "objective", "denoise", "final")
#: The metrics an objective can name.
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
#: Hyperparameters of the convolutional part, which the mlp model does not have.
CONV_PARAMS = ("conv_layers", "convs_per_block", "filters", "kernel_size", "pooling", "pool_size", "padding", "strides",
               "conv_dropout")
ACTIVATIONS = ("relu", "elu", "selu", "tanh", "sigmoid", "gelu", "swish", "leaky_relu")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad", "adadelta", "nadam", "adamax")
LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence")
POOLINGS = ("max", "average", "none")
PADDINGS = ("valid", "same")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "uniform")
MODELS = ("cnn", "mlp")
STRATEGIES = (
    "auto",
    "random",
    "bayesian",
    "hyperband",
    "grid",
    "sklearn-grid",
    "sklearn-random",
    "sklearn-halving",
    "sweep",
)
#: ``strategy: auto`` with a time budget and no ``max_trials``: trials run until the budget ends.
AUTO_MAX_TRIALS = 10_000
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


#: Upper bounds of the integer settings: far above any useful value, low enough that nothing
#: overflows or allocates absurdly (10**18 units would be accepted and fail at build time).
MAX_UNITS = 65_536
MAX_FILTERS = 16_384
MAX_BATCH_SIZE = 1_048_576
MAX_LAYERS = 64
MAX_KERNEL = 512
MAX_EPOCHS = 100_000
#: Seeds are passed to numpy and scikit-learn, which take 0..2**32-1.
MAX_SEED = 2**32 - 1


def int_rule(low: int, high: int) -> Callable[[Any], str | None]:
    """A rule for an integer in ``[low, high]``."""

    def check(v: Any) -> str | None:
        return None if is_int(v) and low <= v <= high else f"must be an integer from {low} to {high}"

    return check


def _int_or_list_rule(low: int, high: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if is_int(v) and low <= v <= high:
            return None
        if isinstance(v, (list, tuple)) and 0 < len(v) <= MAX_LAYERS and all(is_int(x) and low <= x <= high for x in v):
            return None
        return f"must be an integer from {low} to {high} or a non-empty list of at most {MAX_LAYERS} of them"

    return check


def float_rule(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[Any], str | None]:
    """A rule for a number in ``[low, high]``; ``low_open``/``high_open`` exclude an end."""
    lo_s = "(" if low_open else "["
    hi_s = ")" if high_open else "]"

    def check(v: Any) -> str | None:
        if not is_number(v):
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
    number = float_rule(0.0, 1e3, low_open=True)
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
            if not is_number(val) or not 0 <= val <= 180:
                return f"augmentation.{key} is in degrees and must be in [0, 180]"
        elif not is_number(val) or not 0 <= val < 1:
            return f"augmentation.{key} is a fraction and must be in [0, 1)"
    return None


RULES: dict[str, Callable[[Any], str | None]] = {
    "conv_layers": int_rule(0, MAX_LAYERS),
    "convs_per_block": int_rule(1, MAX_LAYERS),
    "filters": _int_or_list_rule(1, MAX_FILTERS),
    "kernel_size": _int_or_list_rule(1, MAX_KERNEL),
    "strides": _int_or_list_rule(1, MAX_KERNEL),
    "padding": _enum_or_list_rule(PADDINGS),
    "pooling": _enum_rule(POOLINGS),
    "pool_size": int_rule(1, MAX_KERNEL),
    "conv_dropout": float_rule(0.0, 1.0, high_open=True),
    "batch_norm": _bool_rule,
    "dense_layers": int_rule(0, MAX_LAYERS),
    "units": _int_or_list_rule(1, MAX_UNITS),
    "dropout": float_rule(0.0, 1.0, high_open=True),
    "activation": _enum_rule(ACTIVATIONS),
    "leaky_relu_slope": float_rule(0.0, 1.0),
    "kernel_initializer": _enum_rule(INITIALIZERS),
    "optimizer": _enum_rule(OPTIMIZERS),
    "learning_rate": _learning_rate_rule,
    "momentum": float_rule(0.0, 1.0, high_open=True),
    "nesterov": _bool_rule,
    "loss": _enum_rule(LOSSES),
    "batch_size": int_rule(1, MAX_BATCH_SIZE),
    "epochs": _optional(int_rule(1, MAX_EPOCHS)),
    "validation_split": _optional(float_rule(0.0, 1.0, low_open=True, high_open=True)),
    "augmentation": _augmentation_rule,
}
# Per-block / per-layer overrides: filters_1, kernel_size_2, units_1 ... (1-based, no leading zero)
#: Indexed override base -> the hyperparameter that counts its layers.
INDEXED = {"filters": "conv_layers", "kernel_size": "conv_layers", "units": "dense_layers"}
_INDEXED_HIGH = {"filters": MAX_FILTERS, "kernel_size": MAX_KERNEL, "units": MAX_UNITS}


def split_indexed(name: str) -> tuple[str, int] | None:
    """``("filters", 2)`` for ``filters_2``; None for any other name (``filters_01`` included)."""
    base, _, idx = name.rpartition("_")
    if base in INDEXED and idx.isascii() and idx.isdigit() and not idx.startswith("0") and len(idx) <= 3:
        return base, int(idx)
    return None


def rule_for(name: str) -> Callable[[Any], str | None] | None:
    """The value rule of hyperparameter ``name`` (``filters_2`` and the like included), or None."""
    if name in RULES:
        return RULES[name]
    indexed = split_indexed(name)
    if indexed is not None:
        return int_rule(1, _INDEXED_HIGH[indexed[0]])
    return None
