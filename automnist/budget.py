"""A time budget, planned: what an epoch costs, how much to keep for the final model,
and whether one more trial or epoch still fits.

Costs are measured as the search goes, in seconds per training image and epoch (so a
configuration measured on the training split predicts its refit on training +
validation images): a configuration's own cost once it has trained an epoch past its
first (which also traces the graph); before that, the measured cost of the others
scaled by its size (forward multiply-adds per image, :func:`automnist.cost.forward_macs`,
given with :meth:`BudgetPlan.set_work`), or their median when sizes are not known.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

__all__ = ["BudgetPlan", "SAFETY", "MAX_RESERVE", "FIXED_WORK"]

#: Estimates are stretched by this factor before they are trusted with the budget.
SAFETY = 1.15
#: The reserve for the final model never takes more than this share of the budget: a refit
#: that needs more is not planned for (the search's best model is kept instead).
MAX_RESERVE = 0.25
#: The part of an image's training step that does not grow with the network (reading the
#: batch, the loss, the optimizer's step), in forward multiply-adds: a configuration's cost
#: is taken proportional to its multiply-adds plus this.
FIXED_WORK = 1.0e6


@dataclass
class BudgetPlan:
    """The plan of a budgeted search.

    Parameters
    ----------
    deadline : float or None
        ``time.time()`` at which the whole search, final model included, must end
        (None: no budget; everything fits).
    budget : float, optional
        The whole budget in seconds; the reserve is at most :data:`MAX_RESERVE` of it.
    fit_images, refit_images : int
        Training images of a trial and of the final refit (training + validation).
    reserve_final : bool
        Keep time for refitting the best configuration after the search.
    final_share : float, optional
        Keep this share of the budget for the final model instead of the time its refit is
        predicted to take (``strategy: auto`` searching on a subset of a large data set: the
        final model trains on every training image for as long as that share allows); the
        ensemble's time is kept on top of it.
    ended : str, optional
        Why the search ended before its planned end (set by the strategy; the final model's
        note repeats it).
    ensemble : int
        The ensemble's candidates (``SearchSpec.ensemble_size``; 1: no ensemble): choosing and
        saving it after the final model is kept time for too (:meth:`ensemble_seconds`).
    """

    deadline: float | None
    fit_images: int
    refit_images: int
    reserve_final: bool = True
    budget: float | None = None  # seconds in all (caps the reserve at MAX_RESERVE of it)
    final_share: float | None = None  # a fixed share of the budget kept for the final model
    ended: str | None = None  # why the search ended early, if it did
    ensemble: int = 1  # the ensemble's candidates after the search (1: none)
    _costs: dict[str, list[float]] = field(default_factory=dict)  # trial id -> seconds per image-epoch
    _first: dict[str, float] = field(default_factory=dict)  # trial id -> its first epoch (graph tracing included)
    _overheads: list[float] = field(default_factory=list)  # seconds of a trial outside its epochs
    _work: dict[str, float] = field(default_factory=dict)  # trial id -> forward multiply-adds per image

    # -- measuring
    def epoch_done(self, trial_id: str, seconds: float, images: int | None = None) -> None:
        """One epoch of ``trial_id`` took ``seconds`` on ``images`` training images (a
        trial's first epoch also traces its graph: it counts only until a later one is seen)."""
        cost = seconds / max(1, images or self.fit_images)
        if str(trial_id) not in self._first:
            self._first[str(trial_id)] = cost
        else:
            self._costs.setdefault(str(trial_id), []).append(cost)

    def set_work(self, trial_id: str, macs: float) -> None:
        """The size of ``trial_id``'s network (forward multiply-adds per image), so its cost
        can be predicted from the others' before it trains."""
        self._work[str(trial_id)] = float(macs)

    def trial_done(self, seconds: float, epoch_seconds: float) -> None:
        """A trial took ``seconds`` in all, ``epoch_seconds`` of them training."""
        self._overheads.append(max(0.0, seconds - epoch_seconds))

    # -- estimating
    def epoch_seconds(self, trial_id: str | None = None, images: int | None = None, *,
                      cheapest: bool = False) -> float | None:
        """Seconds one epoch of ``trial_id`` (or of a configuration not tried yet: the median
        configuration so far, or with ``cheapest`` the cheapest) takes on ``images`` images
        (default: a trial's), or None before anything was measured."""
        key = None if trial_id is None else str(trial_id)
        if cheapest:
            seen = [statistics.median(c) for c in self._costs.values()] or list(self._first.values())
            per_image = min(seen) if seen else None
        else:
            per_image = self._per_image(key)
        return None if per_image is None else per_image * (images or self.fit_images)

    def _per_image(self, key: str | None) -> float | None:
        if key in self._costs:
            return statistics.median(self._costs[key])
        scaled = self._scaled(key)
        if scaled is not None:
            return scaled
        if self._costs:
            return statistics.median(c for costs in self._costs.values() for c in costs)
        if key in self._first:
            return self._first[key]
        if self._first:
            return statistics.median(self._first.values())
        return None

    def _scaled(self, key: str | None) -> float | None:
        """The others' cost per unit of work times this configuration's work (None when
        either is not known)."""
        if key not in self._work:
            return None
        rates = [statistics.median(costs) / (self._work[k] + FIXED_WORK)
                 for k, costs in self._costs.items() if k in self._work]
        if not rates:  # only first epochs seen: they include tracing, an overestimate on the safe side
            rates = [first / (self._work[k] + FIXED_WORK) for k, first in self._first.items() if k in self._work]
        return statistics.median(rates) * (self._work[key] + FIXED_WORK) if rates else None

    def trial_seconds(self, trial_id: str | None, epochs: int, *, cheapest: bool = False) -> float | None:
        """Seconds ``trial_id`` (or, with ``cheapest``, the cheapest configuration so far) takes
        to train ``epochs`` epochs from scratch: its epochs, its first epoch's graph tracing (as
        measured on the others) and a trial's overhead; None before anything was measured."""
        per_epoch = self.epoch_seconds(trial_id, cheapest=cheapest)
        if per_epoch is None:
            return None
        return per_epoch * epochs + self.tracing() + self.overhead()

    def tracing(self) -> float:
        """Seconds a trial's first epoch takes over its later ones (tracing the graph)."""
        extra = [(self._first[k] - statistics.median(c)) * self.fit_images
                 for k, c in self._costs.items() if k in self._first]
        return max(0.0, statistics.median(extra)) if extra else 0.0

    def overhead(self) -> float:
        """Seconds a trial spends outside its epochs (building, evaluating, saving)."""
        return statistics.median(self._overheads) if self._overheads else 0.0

    def refit_seconds(self, trial_id: str | None, epochs: int) -> float | None:
        """Seconds a refit of ``trial_id``'s configuration for ``epochs`` epochs on the refit
        images takes: its first epoch (graph tracing included), the others, a trial's
        overhead; None before anything was measured."""
        per_epoch = self.epoch_seconds(trial_id, self.refit_images)
        if per_epoch is None:
            return None
        first = self._first.get(str(trial_id)) if trial_id is not None else None
        first_epoch = max(per_epoch, first * self.refit_images) if first is not None else 2 * per_epoch
        return first_epoch + per_epoch * max(0, epochs - 1) + self.overhead()

    def refit_epochs_within(self, trial_id: str | None, seconds: float, epochs: int) -> int:
        """How many of ``epochs`` refit epochs fit in ``seconds`` (stretched by :data:`SAFETY`)."""
        for n in range(epochs, 0, -1):
            cost = self.refit_seconds(trial_id, n)
            if cost is None or SAFETY * cost <= seconds:
                return n
        return 0

    def ensemble_seconds(self, members: int | None = None) -> float:
        """Seconds to keep for the ensemble after the final model: loading, scoring and saving
        its candidates, about a trial's overhead each.  The candidates are the final model and
        ``members`` trials' models (before the search ends, as many as :attr:`ensemble` allows)."""
        if self.ensemble < 2:
            return 0.0
        candidates = 1 + (self.ensemble if members is None else min(members, self.ensemble))
        return SAFETY * candidates * self.overhead() if candidates > 1 else 0.0

    def reserve(self, trial_id: str | None, epochs: int) -> float:
        """Seconds to keep for refitting ``trial_id``'s configuration for ``epochs`` epochs,
        and for the ensemble after it."""
        if self.reserve_final and self.final_share is not None and self.budget is not None:
            return self.final_share * self.budget + self.ensemble_seconds()
        cost = self.refit_seconds(trial_id, epochs) if self.reserve_final else None
        if cost is None:
            return self.ensemble_seconds()
        reserve = SAFETY * cost
        # a refit that cannot fit in its share would be skipped anyway: keep nothing back for it
        fits = self.budget is None or reserve <= MAX_RESERVE * self.budget
        return (reserve if fits else 0.0) + self.ensemble_seconds()

    # -- deciding
    def search_deadline(self, trial_id: str | None, epochs: int) -> float | None:
        """When the search itself must stop so the final model still fits."""
        return None if self.deadline is None else self.deadline - self.reserve(trial_id, epochs)

    def fits(self, seconds: float, trial_id: str | None, epochs: int) -> bool:
        """Whether ``seconds`` more of search work end before :meth:`search_deadline`."""
        end = self.search_deadline(trial_id, epochs)
        return end is None or time.time() + SAFETY * seconds <= end
