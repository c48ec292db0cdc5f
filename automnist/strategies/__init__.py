"""Ways of searching.  Each module exposes ``run(ctx)`` and ``planned_trials(spec)``.

``ctx`` is a :class:`automnist.context.SearchContext`; a strategy proposes configurations
and calls ``ctx.evaluate(trial_id, params)`` for each (or ``ctx.add_record`` for
trials trained by scikit-learn itself).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["get_strategy", "STRATEGY_MODULES", "DISTRIBUTED_MODULES"]

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

#: Strategies run by another module in a process of ``--workers N`` (a chief or a worker).
DISTRIBUTED_MODULES = {"auto": "auto_workers"}


def get_strategy(name: str, *, distributed: bool = False) -> ModuleType:
    """The module implementing strategy ``name`` (in a chief or worker process when ``distributed``)."""
    try:
        module = (DISTRIBUTED_MODULES if distributed and name in DISTRIBUTED_MODULES else STRATEGY_MODULES)[name]
    except KeyError:
        raise ValueError(f"strategy: unknown strategy {name!r}; known: {', '.join(STRATEGY_MODULES)}") from None
    return importlib.import_module(f"automnist.strategies.{module}")
