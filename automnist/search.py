"""Run a search: create (or resume) a run, load data once, let a strategy propose
trials, evaluate each through the runner, commit it to the store, keep the best model.

Strategies plug in through one small hook, like scikit-learn's
``_run_search(evaluate_candidates)``: a strategy receives a :class:`SearchContext` and
calls ``ctx.evaluate(trial_id, params)`` for every configuration it wants trained.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automnist.errors import StoreError
from automnist.records import TrialRecord
from automnist.artifacts import save_best_model
from automnist.runs import SearchResult, create_spec_run, default_run_name, prepare_data, run_dir
from automnist.spec import SearchSpec

__all__ = ["SearchContext", "run_search"]


@dataclass
class SearchContext:
    """Everything a strategy needs; ``evaluate`` is the only way to train a trial."""

    spec: SearchSpec
    data: Any  # runner.TrialData
    dataset: Any  # data.Dataset
    store: Any
    run: str
    run_dir: Path
    deadline: float | None
    progress: Any = None
    resume: bool = False
    verbose: int = 0
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    _done: dict[str, TrialRecord] = field(default_factory=dict)

    # -- what strategies use
    def time_left(self) -> bool:
        return self.deadline is None or time.time() < self.deadline

    def finished(self, trial_id: str) -> TrialRecord | None:
        """The stored record of a trial finished before a resume, if any."""
        return self._done.get(str(trial_id))

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether objective value ``a`` beats ``b``."""
        if a is None or (isinstance(a, float) and math.isnan(a)):
            return False
        if b is None or (isinstance(b, float) and math.isnan(b)):
            return True
        return a > b if self.spec.objective.direction == "max" else a < b

    def evaluate(
        self,
        trial_id: str,
        params: Mapping[str, Any],
        *,
        epochs: int | None = None,
        number: int | None = None,
        seed: int | None = None,
    ) -> TrialRecord:
        """Train one configuration (or return it from the store when resuming) and commit it."""
        from automnist.builders import resolve_learning_rate
        from automnist.runner import run_trial

        params = resolve_learning_rate(params)  # {optimizer: lr} -> this trial's number
        done = self.finished(trial_id)
        if done is not None:
            self._track(done, new=False)
            return done
        number = len(self.trials) if number is None else number
        trial_seed = self.spec.search.seed + number if seed is None else seed
        record = run_trial(
            params,
            self.data,
            trial_id=str(trial_id),
            number=number,
            model=self.spec.model,
            epochs=epochs or self.spec.search.epochs,
            validation_split=self.spec.data.validation_split,
            cv=self.spec.search.cv,
            seed=trial_seed,
            split_seed=self.spec.search.seed,
            deadline=self.deadline,
            on_model=self._keep_if_best,
            verbose=self.verbose,
        )
        self.store.add_trial(self.run, record)
        self._done[record.trial_id] = record
        self._track(record, new=True)
        return record

    def add_record(self, record: TrialRecord) -> None:
        """Commit a trial trained elsewhere (e.g. inside GridSearchCV)."""
        self.store.add_trial(self.run, record)
        self._done[record.trial_id] = record
        self._track(record, new=True)

    # -- internals
    def _objective(self, record: TrialRecord) -> float | None:
        return record.objective(self.spec.objective.name) if record.status == "ok" else None

    def _track(self, record: TrialRecord, *, new: bool) -> None:
        self.trials.append(record)
        if self.better(self._objective(record), self._objective(self.best) if self.best else None):
            self.best = record
        if self.progress is not None:
            best = self._objective(self.best) if self.best else None
            self.progress.update(1)
            self.progress.set_postfix_str(
                f"best {self.spec.objective.name}={best:.4f}" if best is not None else "no ok trial yet"
                + ("" if new else " (resumed)"),
                refresh=True,
            )

    def _keep_if_best(self, model: Any, record: TrialRecord) -> None:
        """Save the model and its test predictions when this trial beats the best so far."""
        current = self._objective(self.best) if self.best else None
        if self.better(record.objective(self.spec.objective.name), current):
            save_best_model(model, self.dataset, self.run_dir, record.trial_id)


def run_search(
    spec: SearchSpec,
    *,
    results_dir: str | Path = "results",
    run_name: str | None = None,
    resume: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
    verbose: int = 0,
    dataset: Any = None,
) -> SearchResult:
    """Run ``spec``'s search and record every trial in ``<results_dir>/automnist.db``.

    Parameters
    ----------
    spec : SearchSpec
        Validated spec (apply CLI overrides with ``spec.replace(...)`` first).
    results_dir : path
        Output root; the run's files go to ``<results_dir>/<run>/``.
    run_name : str, optional
        Defaults to ``<spec name>-<timestamp>``.
    resume : bool
        Continue the run ``run_name``: finished trials are kept, not repeated.
    data_dir : str, optional
        Where to look for data set files first.
    progress : bool
        Show a progress bar (trial i/N, best so far, elapsed).
    dataset : automnist.data.Dataset, optional
        Use these arrays instead of loading ``spec.data`` (scikit-learn estimators).

    Returns
    -------
    SearchResult

    Raises
    ------
    StoreError
        If ``run_name`` exists and ``resume`` is False, or ``resume`` is True and the run
        does not exist or was made from a different spec.
    """
    from automnist.runner import TrialData
    from automnist.store import Store
    from automnist.strategies import get_strategy

    strategy = get_strategy(spec.search.strategy)
    store = Store.at(results_dir)
    name = run_name or default_run_name(spec)
    existing = store.get_run(name)
    done: dict[str, TrialRecord] = {}
    if resume:
        if existing is None:
            raise StoreError(f"cannot resume: no run named {name!r}; known runs: {', '.join(store.run_names()) or 'none'}")
        if existing["spec_hash"] != spec.hash:
            raise StoreError(
                f"cannot resume run {name!r}: it was made from a different spec or options "
                f"(hash {existing['spec_hash']}, now {spec.hash}); start a new run instead"
            )
        done = {t.trial_id: t for t in store.get_trials(name)}
    elif existing is not None:
        raise StoreError(f"a run named {name!r} already exists; pass --resume to continue it or choose another --run-name")
    run_spec, lr_note = spec, {}
    from automnist.experiments.lr_find import resolve_learning_rates, uses_lr_find

    if uses_lr_find(spec):
        # learning_rate: from_lr_find -> reuse the newest range test of this spec, or run one
        # now; resolved before the run is created so its config records where the rates came from
        try:
            dataset = dataset if dataset is not None else prepare_data(spec, data_dir)
            run_spec, lr_note = resolve_learning_rates(spec, store=store, dataset=dataset, results_dir=results_dir,
                                                       run=name, progress=progress)
        except BaseException:
            store.close()
            raise
    if resume:
        store.set_status(name, "running")
    else:
        create_spec_run(store, name, spec, kind="sweep" if spec.search.strategy == "sweep" else "search",
                        extra_config={"lr_find": lr_note} if lr_note else None)
    t0 = time.perf_counter()
    status = "failed"
    bar = None
    try:
        ds = dataset if dataset is not None else prepare_data(spec, data_dir)
        directory = run_dir(results_dir, name)
        directory.mkdir(parents=True, exist_ok=True)
        budget = spec.search.time_budget
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=strategy.planned_trials(run_spec), desc=name, unit="trial", dynamic_ncols=True)
        ctx = SearchContext(
            spec=run_spec,
            data=TrialData.from_dataset(ds),
            dataset=ds,
            store=store,
            run=name,
            run_dir=directory,
            deadline=None if budget is None else time.time() + float(budget),
            progress=bar,
            resume=resume,
            verbose=verbose,
            _done=done,
        )
        strategy.run(ctx)
        refits = getattr(strategy, "REFITS_BEST", False)  # scikit-learn refits and saves its own best
        if spec.search.cv and not refits and ctx.best is not None and ctx.best.status == "ok":
            _refit_best(ctx)
        status = "finished"
        return SearchResult(name, run_spec, store.get_trials(name), ctx.best, directory, time.perf_counter() - t0)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if bar is not None:
            bar.close()
        store.finish_run(name, status)
        store.close()


def _refit_best(ctx: SearchContext) -> None:
    """With k-fold CV no single model was kept: train the best configuration on the whole
    training split (hold-out validation as usual) and save it."""
    from automnist.runner import run_trial

    best = ctx.best
    assert best is not None

    def save(model: Any, record: TrialRecord) -> None:
        save_best_model(model, ctx.dataset, ctx.run_dir, best.trial_id)

    run_trial(
        best.params, ctx.data, trial_id=f"{best.trial_id}-refit", model=ctx.spec.model,
        epochs=best.epochs or ctx.spec.search.epochs, validation_split=ctx.spec.data.validation_split,
        cv=None, seed=best.seed, split_seed=ctx.spec.search.seed, on_model=save,
    )
