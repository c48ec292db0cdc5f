"""k-fold cross-validation of one configuration of a spec, stored as a run of kind ``cv``
(the ``automnist cv`` command)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from automnist.builders import resolve_learning_rate
from automnist.data import Dataset
from automnist.errors import StoreError
from automnist.experiments.lr_find_spec import resolve_learning_rates, uses_lr_find
from automnist.records import best_trial
from automnist.runner import TrialData, run_trial
from automnist.runs import SearchResult, create_spec_run, default_run_name, prepare_data, run_dir
from automnist.space import complete_config
from automnist.spec import DEFAULTS, SearchSpec, load_spec
from automnist.store import Store

__all__ = ["cross_validate_spec"]


def _best_params_of_run(store: Store, run: str, spec: SearchSpec) -> dict[str, Any]:
    """The configuration of run ``run``'s best trial by ``spec``'s objective."""
    best = best_trial(store.get_trials(run), spec.objective.name, spec.objective.direction)
    if best is None:
        raise ValueError(f"from_run: run {run!r} has no successful trial with a {spec.objective.name}")
    return dict(best.params)


def cross_validate_spec(
    spec: SearchSpec | str | Path,
    folds: int = 10,
    *,
    params: Mapping[str, Any] | None = None,
    from_run: str | None = None,
    results_dir: str | Path = "results",
    run_name: str | None = None,
    data_dir: str | None = None,
    dataset: Dataset | None = None,
    seed: int | None = None,
    verbose: int = 0,
) -> SearchResult:
    """Stratified k-fold cross-validation of one configuration of ``spec``, stored as a run.

    The configuration is the spec's fixed values with each searched hyperparameter at its
    default (:meth:`SearchSpec.default_values`), overlaid with ``params`` or with the best
    trial of run ``from_run``; ``learning_rate: from_lr_find`` is resolved as
    :func:`~automnist.search.run_search` does.  Training and the folds are :func:`automnist.runner.run_trial`
    with ``cv=folds`` (the same stratified folds a search with ``search.cv`` uses), so the
    result compares directly with search trials.

    Parameters
    ----------
    spec : SearchSpec or path
    folds : int, default 10
        Number of stratified folds (>= 2).
    params : mapping, optional
        Hyperparameter values to evaluate instead of the defaults.
    from_run : str, optional
        Evaluate the best trial (by the spec's objective) of this run in the same store.
    results_dir, run_name :
        Store location and run name (default ``<spec name>-cv-<timestamp>``).
    data_dir : str, optional
        Where to look for data set files first.
    dataset : automnist.data.Dataset, optional
        Use these arrays instead of loading ``spec.data``.
    seed : int, optional
        Overrides ``search.seed`` (weights and fold assignment).
    verbose : int

    Returns
    -------
    automnist.runs.SearchResult
        ``trials[0]`` (also ``best`` when it succeeded) is the record: ``metrics`` hold the
        fold means (``val_accuracy``, ``val_loss``, ``test_accuracy``, ...) and their
        ``*_std``, ``folds`` each fold's metrics.  The run has kind ``cv``.

    Raises
    ------
    ValueError
        For ``folds`` < 2, unknown hyperparameters in ``params``, or a ``from_run`` without
        a successful trial.
    automnist.errors.StoreError
        If ``run_name`` exists, or ``from_run`` does not.
    """
    if not isinstance(spec, SearchSpec):
        spec = load_spec(spec)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"cross_validate_spec: parameter folds: must be an integer >= 2, got {folds!r}")
    if params is not None and from_run is not None:
        raise ValueError("cross_validate_spec: give params or from_run, not both")
    if seed is not None:
        spec = spec.replace(seed=seed)
    unknown = sorted(set(params or {}) - set(DEFAULTS) - {p.name for p in spec.params})
    if unknown:
        raise ValueError(f"cross_validate_spec: parameter params: unknown hyperparameter(s) {', '.join(unknown)}")
    name = run_name or default_run_name(spec, "cv")
    t0 = time.perf_counter()
    with Store.at(results_dir) as store:
        if from_run is not None:
            store.require_run(from_run)
            params = _best_params_of_run(store, from_run, spec)
        if store.get_run(name) is not None:
            raise StoreError(f"a run named {name!r} already exists; choose another run name")
        ds = dataset if dataset is not None else prepare_data(spec, data_dir)
        run_spec, lr_note = spec, {}
        if uses_lr_find(spec) and not (params and "learning_rate" in params):
            # learning_rate: from_lr_find -> the newest range test of this spec, or one run now
            run_spec, lr_note = resolve_learning_rates(spec, store=store, dataset=ds, results_dir=results_dir,
                                                       run=name, progress=False)
        values = resolve_learning_rate(complete_config(run_spec, params or {}))
        extra = {"cv": {"folds": int(folds), "params": values, "from_run": from_run}}
        if lr_note:
            extra["lr_find"] = lr_note
        create_spec_run(store, name, spec, kind="cv", strategy=f"{int(folds)}-fold", extra_config=extra)
        with store.recording(name):
            record = run_trial(
                values, TrialData.from_dataset(ds), trial_id="cv", number=0, model=spec.model,
                epochs=spec.search.epochs, validation_split=spec.data.validation_split, cv=int(folds),
                seed=spec.search.seed, split_seed=spec.search.seed, verbose=verbose,
            )
            store.add_trial(name, record)
    best = record if record.status == "ok" else None
    return SearchResult(name, spec, [record], best, run_dir(results_dir, name), time.perf_counter() - t0)
