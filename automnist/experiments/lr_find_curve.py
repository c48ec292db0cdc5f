"""The numbers of a learning-rate range test: the smoothed loss curve, where the test
diverged, and the suggested learning rate (:data:`RULE`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["RULE", "SKIP_START", "smooth_losses", "stop_index", "lowest_index", "suggest_lr"]

#: How the suggested learning rate is chosen (also stored with every lr_find run).
RULE = ("steepest descent: the learning rate where the smoothed loss falls fastest per decade "
        "(most negative d loss / d log10 lr), between batch 11 and the loss minimum")
#: Batches ignored at the start of a curve (capped at a quarter of its length).
SKIP_START = 10


def smooth_losses(losses: Sequence[float], beta: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction.

    ``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i`` (``avg_0 = 0``) and
    ``smoothed_i = avg_i / (1 - beta**i)`` for ``i = 1..n``; computed with
    ``scipy.signal.lfilter``.  A NaN propagates to every later value.
    """
    from scipy.signal import lfilter

    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta: must be in [0, 1), got {beta!r}")
    x = np.asarray(losses, dtype=np.float64)
    if x.size == 0:
        return x
    avg = lfilter([1.0 - beta], [1.0, -beta], x)
    return avg / (1.0 - beta ** np.arange(1, x.size + 1))


def stop_index(smoothed: Sequence[float], factor: float = 4.0) -> int | None:
    """The first batch at which the test has diverged, or None.

    Diverged: the smoothed loss is not finite, or exceeds ``factor`` times the lowest
    smoothed loss before it.
    """
    best = math.inf
    for i, value in enumerate(np.asarray(smoothed, dtype=np.float64)):
        if not math.isfinite(value) or (i > 0 and value > factor * best):
            return i
        best = min(best, value)
    return None


def _usable(lr: np.ndarray, s: np.ndarray, skip_start: int) -> tuple[int, int]:
    """(first, end): the finite part of a curve after the skipped start."""
    bad = np.flatnonzero(~np.isfinite(s) | ~np.isfinite(lr) | (lr <= 0))
    end = int(bad[0]) if bad.size else s.size
    return min(int(skip_start), end // 4), end


def lowest_index(lrs: Sequence[float], smoothed: Sequence[float], skip_start: int = SKIP_START) -> int | None:
    """Index of the minimum smoothed loss after the skipped start (None: no finite point)."""
    lr = np.asarray(lrs, dtype=np.float64)
    s = np.asarray(smoothed, dtype=np.float64)
    first, end = _usable(lr, s, skip_start)
    if end <= first:
        return None
    return first + int(np.argmin(s[first:end]))


def suggest_lr(lrs: Sequence[float], smoothed: Sequence[float], skip_start: int = SKIP_START) -> float:
    """The suggested learning rate of one curve (see :data:`RULE`).

    Parameters
    ----------
    lrs : sequence of float
        Learning rate of each batch (increasing).
    smoothed : sequence of float
        Smoothed loss of each batch.
    skip_start : int
        Batches ignored at the start (at most a quarter of the finite curve).

    Returns
    -------
    float
        The learning rate at the most negative slope of ``smoothed`` against
        ``log10(lrs)``, between the skipped start and the minimum of ``smoothed``; NaN
        when fewer than three points lead down to the minimum (the loss never fell).
    """
    lr = np.asarray(lrs, dtype=np.float64)
    s = np.asarray(smoothed, dtype=np.float64)
    if lr.shape != s.shape:
        raise ValueError(f"lrs and smoothed must have the same length, got {lr.size} and {s.size}")
    first, _ = _usable(lr, s, skip_start)
    lowest = lowest_index(lr, s, skip_start)
    if lowest is None or lowest - first < 2:
        return math.nan
    part = slice(first, lowest + 1)
    slope = np.gradient(s[part], np.log10(lr[part]))
    return float(lr[first + int(np.argmin(slope))])
