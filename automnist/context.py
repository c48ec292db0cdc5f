"""What a strategy sees of a running search: :class:`SearchContext`, whose ``evaluate`` is
the only way to train a trial (through the runner, committed to the store, the best
model and the ensemble members kept as trials end)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from automnist.artifacts import keep_member, save_best_model
from automnist.budget import BudgetPlan
from automnist.builders import resolve_learning_rate
from automnist.data import Dataset
from automnist.progress import SearchProgress
from automnist.records import TrialRecord, outranks, ranked_trials
from automnist.runner import TrialData, run_trial
from automnist.runs import run_dir
from automnist.spec import SearchSpec
from automnist.store import Store

__all__ = ["SearchContext", "SearchListener", "CHECKPOINTS"]

#: Folder of a run's directory where trials save models for later trials to continue.
CHECKPOINTS = "checkpoints"


class SearchListener(Protocol):
    """Told when each new trial is committed and when the run ends (live report, TensorBoard, index)."""

    def trial_ended(self, ctx: SearchContext, record: TrialRecord) -> None: ...

    def run_ended(self, store: Store, run: str) -> None: ...


@dataclass
class SearchContext:
    """Everything a strategy needs; ``evaluate`` is the only way to train a trial."""

    spec: SearchSpec
    data: TrialData
    dataset: Dataset
    store: Store
    run: str
    run_dir: Path
    deadline: float | None
    progress: SearchProgress | None = None
    resume: bool = False
    verbose: int = 0
    plan: BudgetPlan | None = None  # a budget-aware strategy's measured costs (automnist.final reads them)
    listeners: Sequence[SearchListener] = ()
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    _done: dict[str, TrialRecord] = field(default_factory=dict)

    # -- what strategies use
    def time_left(self) -> bool:
        return self.deadline is None or time.time() < self.deadline

    def finished(self, trial_id: str) -> TrialRecord | None:
        """The stored record of a trial finished before a resume, if any."""
        return self._done.get(str(trial_id))

    def finished_trials(self) -> list[TrialRecord]:
        """Every trial finished so far (at the start of a resumed run: the stored ones)."""
        return list(self._done.values())

    def evaluate(
        self,
        trial_id: str,
        params: Mapping[str, Any],
        *,
        epochs: int | None = None,
        number: int | None = None,
        seed: int | None = None,
        callbacks: Callable[[int], list[Any]] | None = None,
        resume_from: str | None = None,
        initial_epoch: int = 0,
        checkpoint: bool = False,
        rung_epochs: Sequence[int] = (),
        on_model: Callable[[Any, TrialRecord], None] | None = None,
        train_images: int | None = None,
    ) -> TrialRecord:
        """Train one configuration (or return it from the store when resuming) and commit it.

        Parameters
        ----------
        trial_id, params :
            The trial's id in its run and its configuration.
        epochs : int, optional
            Train up to this epoch (default ``search.epochs``, a fully trained model).
        number, seed : int, optional
            Order of the trial and its seed (default ``search.seed + number``).
        callbacks : callable, optional
            ``callbacks(fold)``: more Keras callbacks (e.g. pruning).
        resume_from, initial_epoch :
            Continue the models a trial ``resume_from`` checkpointed, from ``initial_epoch``
            (multi-fidelity that keeps its training); from scratch when it saved none.
        checkpoint : bool
            Save this trial's models for a later trial to continue.
        rung_epochs : sequence of int
            Epochs whose metrics are stored as the trial's rungs.
        on_model : callable, optional
            Also called with the trained model and its record (e.g. to keep it for an ensemble).
        train_images : int, optional
            Train on a stratified subset of this many training images (the validation
            images unchanged): a cheaper fidelity on large data sets.
        """
        params = resolve_learning_rate(params)  # {optimizer: lr} -> this trial's number
        done = self.finished(trial_id)
        if done is not None:
            self._track(done, new=False)
            return done
        number = len(self.trials) if number is None else number
        trial_seed = self.spec.search.seed + number if seed is None else seed
        resume_dir = None if resume_from is None else self.checkpoint_dir(resume_from)
        if resume_dir is None or not resume_dir.is_dir():
            resume_dir, initial_epoch = None, 0

        def keep(model: Any, record: TrialRecord) -> None:
            self._keep_if_best(model, record)
            if on_model is not None:
                on_model(model, record)

        record = run_trial(
            params,
            self.data,
            trial_id=str(trial_id),
            number=number,
            model=self.spec.model,
            epochs=epochs or self.spec.search.epochs,
            max_epochs=self.spec.search.epochs,
            validation_split=self.spec.data.validation_split,
            cv=self.spec.search.cv,
            seed=trial_seed,
            split_seed=self.spec.search.seed,
            deadline=self.deadline,
            on_model=keep,
            verbose=self.verbose,
            early_stopping=self.spec.search.early_stopping,
            callbacks=callbacks,
            resume_dir=resume_dir,
            initial_epoch=initial_epoch,
            checkpoint_dir=self.checkpoint_dir(str(trial_id)) if checkpoint else None,
            rung_epochs=rung_epochs,
            train_images=train_images,
        )
        self.add_record(record)
        return record

    def checkpoint_dir(self, trial_id: str) -> Path:
        """Where trial ``trial_id`` saves the models a later trial continues."""
        return self.run_dir / CHECKPOINTS / run_dir(".", str(trial_id)).name

    def add_record(self, record: TrialRecord) -> None:
        """Commit a finished trial (trained by :meth:`evaluate`, or elsewhere, e.g. inside GridSearchCV)."""
        self.store.add_trial(self.run, record)
        self._done[record.trial_id] = record
        self._track(record, new=True)

    # -- internals
    def _objective(self, record: TrialRecord | None) -> float | None:
        return record.objective(self.spec.objective.name) if record is not None and record.status == "ok" else None

    def _outranks(self, record: TrialRecord, other: TrialRecord | None) -> bool:
        return outranks(record, other, self.spec.objective.name, self.spec.objective.direction)

    def _track(self, record: TrialRecord, *, new: bool) -> None:
        self.trials.append(record)
        if self._outranks(record, self.best):
            self.best = record
        if self.progress is not None:
            self.progress.trial_done(self._objective(self.best), resumed=not new)
        for listener in self.listeners if new else ():
            listener.trial_ended(self, record)

    def _keep_if_best(self, model: Any, record: TrialRecord) -> None:
        """Save the model and its test predictions when this trial beats the best so far,
        and keep it as an ensemble member while it is among the top ``spec.ensemble_size``."""
        if self._outranks(record, self.best):
            save_best_model(model, self.dataset, self.run_dir, record.trial_id)
        if self.spec.ensemble_size > 1:
            ranked = ranked_trials([*self.trials, record], self.spec.objective.name, self.spec.objective.direction)
            keep_member(self.run_dir, model, record, ranked, self.spec.ensemble_size)
