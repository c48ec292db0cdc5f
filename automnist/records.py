"""Plain value types passed between stages (runner -> store -> aggregate)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialRecord", "TRIAL_STATUSES"]

TRIAL_STATUSES = ("ok", "failed", "infeasible")


@dataclass
class TrialRecord:
    """The outcome of one trial, one row of the ``trials`` table.

    Attributes
    ----------
    trial_id : str
        Unique within its run (Keras Tuner's id, or ``"0007"`` style numbers).
    number : int
        0-based order in which the trial started.
    params : dict
        The complete configuration trained (fixed values included).
    status : {"ok", "failed", "infeasible"}
    metrics : dict of str to float
        Final-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` and
        ``test_loss``, ``test_accuracy``.  With k-fold CV these are means over the
        folds and ``<metric>_std`` holds the standard deviation.
    folds : list of dict
        One dict per fold: ``{"fold": i, "val_accuracy": ..., "val_loss": ..., ...}``.
        Without CV, empty.
    history : list of dict
        Tidy per-epoch rows ``{"fold": f, "epoch": e, "metric": m, "value": v}``
        (``fold`` is 0 without CV; ``epoch`` is 1-based).
    """

    trial_id: str
    number: int
    params: dict[str, Any]
    status: str = "ok"
    metrics: dict[str, float] = field(default_factory=dict)
    folds: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    n_params: int | None = None
    seed: int = 0
    epochs: int = 0
    error: str | None = None
    started_at: float = 0.0
    ended_at: float = 0.0

    def objective(self, name: str) -> float | None:
        """The value of metric ``name``, or None when the trial has none."""
        value = self.metrics.get(name)
        return None if value is None else float(value)
