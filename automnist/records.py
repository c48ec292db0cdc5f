"""Plain value types passed between stages (runner -> store -> aggregate), and the one
rule for which trial is best.

Every place that ranks trials (the search's running best, the estimators' ``best_params_``,
the CLI leaderboard, sweeps, the report's leaderboard) goes through :func:`score_key` /
:func:`best_trial`, and every place that needs an objective's direction through
:func:`objective_direction`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialRecord", "TRIAL_STATUSES", "DIRECTIONS", "SCORE_DECIMALS", "STOP_REASONS", "objective_direction",
           "score_key", "is_better", "is_fully_trained", "rank_key_of", "rank_key", "outranks", "best_trial", "ranked_trials", "plain_value",
           "trained_score", "fit_epochs"]

TRIAL_STATUSES = ("ok", "failed", "infeasible")
#: Why a trial's training ended before its planned epochs.
STOP_REASONS = ("pruned", "early_stopping", "budget")
DIRECTIONS = ("max", "min")
#: Scores are compared at this many decimals: metrics are float32, so two values from the
#: same number of correct answers can differ by ~1e-8 after averaging, and that is a tie.
SCORE_DECIMALS = 7


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
    epochs, max_epochs : int
        Epochs trained (the most of any fold) and epochs planned (0: unknown).
    images : int or None
        Training images the model saw (per fold).
    stop_reason : {None, "pruned", "early_stopping", "budget"}
        Why training ended before ``max_epochs``.
    rungs : list of dict
        Multi-fidelity checkpoints: ``{"rung": k, "epochs": e, "images": n, <metric>: value}``
        for each rung the trial reached (its score at each fidelity).
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
    max_epochs: int = 0
    images: int | None = None
    stop_reason: str | None = None
    rungs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fully_trained(self) -> bool:
        """Whether the trial trained as planned (:func:`is_fully_trained`)."""
        return is_fully_trained(self.epochs, self.max_epochs, self.stop_reason)

    def objective(self, name: str) -> float | None:
        """The value of metric ``name``, or None when the trial has none."""
        value = self.metrics.get(name)
        return None if value is None else float(value)


def objective_direction(name: str, direction: str | None = None) -> str:
    """``direction`` when given, else ``"min"`` for a loss and ``"max"`` for anything else.

    Raises
    ------
    ValueError
        When ``direction`` is given and is neither ``"max"`` nor ``"min"``.
    """
    if direction is None:
        return "min" if str(name).endswith("loss") else "max"
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: must be 'max' or 'min', got {direction!r}")
    return direction


def score_key(value: Any, direction: str) -> float | None:
    """``value`` as a higher-is-better number rounded to :data:`SCORE_DECIMALS`, or None
    when there is no finite value (a missing score is never better than any other)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return round(value if objective_direction("", direction) == "max" else -value, SCORE_DECIMALS)


def is_better(a: Any, b: Any, direction: str) -> bool:
    """Whether objective value ``a`` strictly beats ``b`` (ties, float noise included, do not)."""
    ka, kb = score_key(a, direction), score_key(b, direction)
    return ka is not None and (kb is None or ka > kb)


def is_fully_trained(epochs: int, max_epochs: int, stop_reason: str | None) -> bool:
    """Whether a trial trained as planned: it reached ``max_epochs`` (0: unknown, as in
    stores written before it was recorded), or stopped early because it no longer
    improved.  Pruned, budget-cut and low-fidelity trials (Hyperband's first rungs) did not."""
    if stop_reason in ("pruned", "budget"):
        return False
    return stop_reason == "early_stopping" or epochs >= max_epochs


def rank_key_of(status: str, value: Any, fully_trained: bool, direction: str) -> tuple[bool, float] | None:
    """``(fully_trained, score)``, larger is better, or None for a trial without a score
    (not ``ok``, or no finite value): a fully trained trial outranks a partly trained one
    (a 2-epoch score is not a trained model's), then the score decides."""
    score = score_key(value, direction) if status == "ok" else None
    return None if score is None else (bool(fully_trained), score)


def rank_key(record: TrialRecord | None, objective: str, direction: str) -> tuple[bool, float] | None:
    """:func:`rank_key_of` a trial record."""
    if record is None:
        return None
    return rank_key_of(record.status, record.objective(objective), record.fully_trained, direction)


def outranks(a: TrialRecord | None, b: TrialRecord | None, objective: str, direction: str) -> bool:
    """Whether trial ``a`` strictly outranks ``b`` (:func:`rank_key`; a tie does not)."""
    ka, kb = rank_key(a, objective, direction), rank_key(b, objective, direction)
    return ka is not None and (kb is None or ka > kb)


def ranked_trials(records: Iterable[TrialRecord], objective: str, direction: str) -> list[TrialRecord]:
    """The ok trials with a finite ``objective``, best first by :func:`rank_key`; ties keep
    their given order."""
    keyed = [(k, i, r) for i, r in enumerate(records) if (k := rank_key(r, objective, direction)) is not None]
    return [r for _, _, r in sorted(keyed, key=lambda t: ((not t[0][0], -t[0][1]), t[1]))]


def best_trial(records: Iterable[TrialRecord], objective: str, direction: str) -> TrialRecord | None:
    """The best ok trial by ``objective`` (fully trained first, the first of tied ones), or None."""
    ranked = ranked_trials(records, objective, direction)
    return ranked[0] if ranked else None


def trained_score(record: TrialRecord, objective: str) -> float | None:
    """``record``'s ``objective`` when it trained (status ``ok``) to a finite value, else None."""
    value = record.objective(objective)
    return value if record.status == "ok" and value is not None and math.isfinite(value) else None


def fit_epochs(record: TrialRecord) -> int:
    """The epochs ``record``'s own fit trained (its first fold's loss history)."""
    return sum(1 for h in record.history if h["fold"] == 0 and h["metric"] == "loss")


def plain_value(v: Any) -> Any:
    """numpy scalars and arrays, tuples and mappings -> plain Python values (as in a YAML spec)."""
    np = sys.modules.get("numpy")  # no numpy value can exist before numpy is imported: keep --help light
    if np is not None and isinstance(v, (np.generic, np.ndarray)):
        return v.tolist() if isinstance(v, np.ndarray) else v.item()
    if isinstance(v, (list, tuple)):
        return [plain_value(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): plain_value(x) for k, x in v.items()}
    return v
