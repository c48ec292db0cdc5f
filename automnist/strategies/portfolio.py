"""Where ``strategy: auto`` starts: a small portfolio of configurations known to train
well on small image classification sets, projected onto the spec's space.

A search that starts from random points spends its first, most expensive minutes on
configurations nobody would choose (a learning rate of 1e-4, one 32-filter block), and
a short budget may end before the sampler has learned anything.  Zero-shot portfolios
(auto-sklearn 2.0, Feurer et al. 2022; AutoGluon's presets) start instead from a few
configurations that did well across many data sets, so the first fully trained model is
already a good one and the sampler (TPE) models the space from there.

The portfolio is generic knowledge about CNNs on small images (LeNet-like blocks,
3x3 kernels, Adam at its default rate, moderate dropout), not anything fitted to one data
set.  Each entry is projected onto the spec's space (:func:`starting_points`): a value
the space has is taken as is, a number goes to the nearest allowed value (on a log scale
for positive numbers), a list of per-block values to their mean where the space
takes one number, and a hyperparameter the entry does not name, or cannot be projected,
is left to the sampler.  Where the spec gives a ``default:`` it wins in the first entry:
the user's baseline is the first configuration tried.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from automnist.records import plain_value
from automnist.space import encode_choice
from automnist.spec import ChoiceParam, IntParam, Param, SearchSpec

__all__ = ["PORTFOLIO", "starting_points", "project"]

#: Starting configurations, cheapest first (the first is never pruned: nothing to compare it with).
PORTFOLIO: tuple[dict[str, Any], ...] = (
    # LeNet-like: two 3x3 blocks of 32 and 64 filters, one dense layer of 128, light dropout, Adam 1e-3
    {"conv_layers": 2, "convs_per_block": 1, "filters": [32, 64], "kernel_size": 3, "padding": "same",
     "pooling": "max", "dense_layers": 1, "units": 128, "dropout": 0.3, "conv_dropout": 0.0, "batch_norm": False,
     "activation": "relu", "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
     "loss": "sparse_categorical_crossentropy"},
    # more capacity, regularised: three 3x3 blocks of 32, 64 and 128 filters with batch norm, 256 units, dropout 0.4
    {"conv_layers": 3, "convs_per_block": 1, "filters": [32, 64, 128], "kernel_size": 3, "padding": "same",
     "pooling": "max", "dense_layers": 1, "units": 256, "dropout": 0.4, "conv_dropout": 0.1, "batch_norm": True,
     "activation": "relu", "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
     "loss": "sparse_categorical_crossentropy"},
)


def _numbers(value: Any) -> list[float] | None:
    """The numbers of a number or of a list of numbers, else None."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
        return None
    return [float(v) for v in items]


def _number(value: Any) -> float | None:
    """A real number from a number or a list of numbers (their mean: per-block filters
    of 32 and 64 are about one width of 48 for every block)."""
    nums = _numbers(value)
    return None if nums is None else sum(nums) / len(nums)


def _list_distance(a: list[float], b: list[float]) -> tuple[int, float]:
    """How far two per-block lists are: length first, then the values they share."""
    return abs(len(a) - len(b)), sum(_distance(x, y) for x, y in zip(a, b))


def _distance(a: float, b: float) -> float:
    return abs(math.log(a) - math.log(b)) if a > 0 and b > 0 else abs(a - b)


def _nearest(target: float, candidates: Sequence[float]) -> int:
    """Index of the candidate nearest ``target`` (the first on a tie)."""
    return min(range(len(candidates)), key=lambda i: (_distance(target, candidates[i]), i))


def project(p: Param, value: Any) -> Any:
    """The sampler's value for ``p`` nearest ``value``, or None when there is none.

    The value is what :func:`automnist.space.suggest` asks optuna for: a choice's label, a
    stepped log range's grid value, a number inside the range on its step.
    """
    value = plain_value(value)
    if isinstance(p, ChoiceParam):
        enc, _ = encode_choice(p)
        values = [plain_value(v) for v in p.values]
        if value in values:
            return enc[values.index(value)]
        target, lists = _numbers(value), [_numbers(v) for v in values]
        if target is None or any(n is None for n in lists):
            return None  # non-numeric choices: only an exact match
        if any(isinstance(v, (list, tuple)) for v in values):  # per-block lists: the nearest list
            return enc[min(range(len(values)), key=lambda i: (_list_distance(target, lists[i]), i))]  # type: ignore
        return enc[_nearest(sum(target) / len(target), [n[0] for n in lists])]  # type: ignore[index]
    target = _number(value)
    if target is None:
        return None
    if p.log and p.step:
        grid = list(p.grid())
        return grid[_nearest(target, grid)]
    target = min(max(target, p.low), p.high)
    if p.step:
        target = p.low + round((target - p.low) / p.step) * p.step
        target = min(target, p.high)
    if isinstance(p, IntParam):
        return int(round(target))
    return round(float(target), 12)


def starting_points(spec: SearchSpec, portfolio: Sequence[dict[str, Any]] = PORTFOLIO) -> list[dict[str, Any]]:
    """The portfolio projected onto ``spec``'s searched hyperparameters, duplicates dropped,
    in the portfolio's order (for ``optuna.Study.enqueue_trial``).  The spec's own
    ``default:`` values replace the first entry's."""
    points: list[dict[str, Any]] = []
    for i, entry in enumerate(portfolio):
        point: dict[str, Any] = {}
        for p in spec.tunable:
            given = getattr(p, "default", None)
            wanted = given if i == 0 and given is not None else entry.get(p.name)
            if wanted is None:
                continue
            raw = project(p, wanted)
            if raw is not None:
                point[p.name] = raw
        if point and point not in points:
            points.append(point)
    return points
