"""Run a search: create (or resume) a run, load data once, let a strategy propose
trials, evaluate each through the runner, commit it to the store, keep the best model.

Strategies plug in through one small hook, like scikit-learn's
``_run_search(evaluate_candidates)``: a strategy receives a :class:`SearchContext` and
calls ``ctx.evaluate(trial_id, params)`` for every configuration it wants trained.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from automnist.context import CHECKPOINTS, SearchContext, SearchListener
from automnist.data import Dataset
from automnist.errors import StoreError
from automnist.experiments.lr_find_spec import resolve_learning_rates, uses_lr_find
from automnist.final import finish
from automnist.progress import SearchProgress
from automnist.records import TrialRecord
from automnist.runner import TrialData
from automnist.runs import SearchResult, create_spec_run, default_run_name, prepare_data, run_dir
from automnist.scale.roles import WORKER, join_run
from automnist.spec import SearchSpec
from automnist.store import Store
from automnist.strategies import get_strategy

__all__ = ["run_search"]


def run_search(
    spec: SearchSpec,
    *,
    results_dir: str | Path = "results",
    run_name: str | None = None,
    resume: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
    verbose: int = 0,
    dataset: Dataset | None = None,
    listeners: Sequence[SearchListener] = (),
    role: str | None = None,
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
        Show a progress bar: trials done and best so far; with a time budget, elapsed /
        budget instead of a trial count the budget will not reach.
    dataset : automnist.data.Dataset, optional
        Use these arrays instead of loading ``spec.data`` (scikit-learn estimators).
    listeners : sequence of SearchListener
        Told of each new trial and of the run's end (its status already stored), e.g.
        the live report and the TensorBoard writer.
    role : {"chief", "worker"}, optional
        This process's part in a distributed Keras Tuner search (:mod:`automnist.scale`):
        the chief creates or resumes the run, serves the oracle, ends the run and makes the
        final model; a worker joins the running run ``run_name`` and only trains trials.

    Returns
    -------
    SearchResult

    Raises
    ------
    StoreError
        If ``run_name`` exists and ``resume`` is False, or ``resume`` is True and the run
        does not exist or was made from a different spec.
    """
    started = time.time()  # a time budget counts from here: loading data and the final model included
    strategy = get_strategy(spec.search.strategy, distributed=role is not None)
    store = Store.at(results_dir)
    name = run_name or default_run_name(spec)
    try:
        worker = role == WORKER
        done = join_run(store, name, spec.hash) if worker else _check_run_name(store, name, spec, resume)
        # the data first: a data set that cannot be loaded must not leave an empty run behind
        dataset = dataset if dataset is not None else prepare_data(spec, data_dir)
        run_spec, lr_note = spec, {}
        if uses_lr_find(spec):
            # learning_rate: from_lr_find -> reuse the newest range test of this spec, or run one
            # now; resolved before the run is created so its config records where the rates came from
            run_spec, lr_note = resolve_learning_rates(spec, store=store, dataset=dataset, results_dir=results_dir,
                                                       run=name, progress=progress)
        if worker:
            pass  # the chief owns the run: its creation, status and end
        elif resume:
            store.set_status(name, "running")
        else:
            create_spec_run(store, name, spec, kind="sweep" if spec.search.strategy == "sweep" else "search",
                            extra_config={"lr_find": lr_note} if lr_note else None)
        t0 = time.perf_counter()
        with nullcontext() if worker else store.recording(name):
            ds = dataset
            directory = run_dir(results_dir, name)
            directory.mkdir(parents=True, exist_ok=True)
            budget = spec.search.time_budget
            deadline = None if budget is None else started + float(budget)
            shown = progress and role is None  # the parent of the chief and workers shows progress
            with SearchProgress.start(shown, name, total=strategy.planned_trials(run_spec), deadline=deadline,
                                      objective=spec.objective.name) as bar:
                ctx = SearchContext(spec=run_spec, data=TrialData.from_dataset(ds), dataset=ds, store=store, run=name,
                                    run_dir=directory, deadline=deadline, progress=bar, resume=resume,
                                    verbose=verbose, _done=done, listeners=listeners)
                strategy.run(ctx)
            if not worker:  # only a running search continues them; other workers may still
                shutil.rmtree(directory / CHECKPOINTS, ignore_errors=True)
            final = {}
            if not worker and not getattr(strategy, "REFITS_BEST", False):  # scikit-learn refits and saves its own best
                final = finish(ctx)
            if final:
                store.update_run_config(name, {"final": final})
        return SearchResult(name, run_spec, store.get_trials(name), ctx.best, directory, time.perf_counter() - t0,
                            final)
    finally:
        for listener in listeners:
            listener.run_ended(store, name)
        store.close()


def _check_run_name(store: Store, name: str, spec: SearchSpec, resume: bool) -> dict[str, TrialRecord]:
    """The trials already finished in run ``name`` (none for a new run).

    Raises
    ------
    StoreError
        A new run whose name is taken, or a resumed one that does not exist or was made
        from a different spec.
    """
    existing = store.get_run(name)
    if not resume:
        if existing is not None:
            raise StoreError(f"a run named {name!r} already exists; pass --resume to continue it or choose another --run-name")
        return {}
    if existing is None:
        raise StoreError(f"cannot resume: no run named {name!r}; known runs: {', '.join(store.run_names()) or 'none'}")
    if existing["spec_hash"] != spec.hash:
        raise StoreError(
            f"cannot resume run {name!r}: it was made from a different spec or options "
            f"(hash {existing['spec_hash']}, now {spec.hash}); start a new run instead"
        )
    return {t.trial_id: t for t in store.get_trials(name)}
