"""Ways of searching.  Each module exposes ``run(ctx)`` and ``planned_trials(spec)``.

``ctx`` is a :class:`automnist.context.SearchContext`; a strategy proposes configurations
and calls ``ctx.evaluate(trial_id, params)`` for each (or ``ctx.add_record`` for
trials trained by scikit-learn itself).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["get_strategy", "STRATEGY_MODULES"]

STRATEGY_MODULES = {
    "auto": "auto",
    "random": "keras_tuner",
    "bayesian": "keras_tuner",
    "hyperband": "keras_tuner",
    "grid": "keras_tuner",
    "sklearn-grid": "sklearn",
    "sklearn-random": "sklearn",
    "sklearn-halving": "sklearn",
    "sweep": "sweep",
}


def get_strategy(name: str) -> ModuleType:
    """The module implementing strategy ``name``."""
    try:
        module = STRATEGY_MODULES[name]
    except KeyError:
        raise ValueError(f"strategy: unknown strategy {name!r}; known: {', '.join(STRATEGY_MODULES)}") from None
    return importlib.import_module(f"automnist.strategies.{module}")
