"""Search-space specs: YAML parsed and validated once, into frozen dataclasses.

:mod:`~automnist.spec.vocabulary` holds the known names, defaults and value rules;
:mod:`~automnist.spec.model` the hyperparameter types and spec sections;
:mod:`~automnist.spec.parse` the section parsers; :mod:`~automnist.spec.search_spec`
the whole :class:`SearchSpec` with :func:`load_spec` / :func:`parse_spec`;
:mod:`~automnist.spec.values` frozen values and their labels.
"""

from __future__ import annotations

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
    is_active,
    param_default,
)
from automnist.spec.search_spec import SearchSpec, load_spec, parse_spec
from automnist.spec.values import freeze, value_label
from automnist.spec.vocabulary import (
    ACTIVATIONS,
    AUGMENTATION_KEYS,
    DEFAULTS,
    INITIALIZERS,
    LOSSES,
    LR_FROM_LR_FIND,
    MODELS,
    OPTIMIZERS,
    PADDINGS,
    POOLINGS,
    RULES,
    STRATEGIES,
    TOP_KEYS,
)

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATION_KEYS",
    "DEFAULTS",
    "INITIALIZERS",
    "LOSSES",
    "LR_FROM_LR_FIND",
    "MODELS",
    "OPTIMIZERS",
    "PADDINGS",
    "POOLINGS",
    "RULES",
    "STRATEGIES",
    "TOP_KEYS",
    "ChoiceParam",
    "Condition",
    "DataSpec",
    "DenoiseSpec",
    "EarlyStoppingSpec",
    "FinalSpec",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "NoiseSpec",
    "Objective",
    "Param",
    "SearchConfig",
    "SearchSpec",
    "freeze",
    "is_active",
    "load_spec",
    "param_default",
    "parse_spec",
    "value_label",
]
