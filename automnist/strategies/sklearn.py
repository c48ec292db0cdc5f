"""scikit-learn strategies: ``sklearn-grid``, ``sklearn-random``, ``sklearn-halving``.

scikit-learn's own search classes (``GridSearchCV``, ``RandomizedSearchCV``,
``HalvingGridSearchCV`` / ``HalvingRandomSearchCV``) search a
:class:`~automnist.KerasCNNClassifier` set to the spec's fixed values, with

* the candidates from :func:`automnist.space.sklearn_grid` (grid, halving over a discrete
  space; a continuous range is a :class:`~automnist.errors.SpecError`) or
  :func:`automnist.space.sklearn_distributions` (random, halving over a continuous space;
  ``log`` ranges are ``loguniform``);
* ``cv = search.cv or 3`` stratified, shuffled folds seeded with ``search.seed`` -- the
  very folds :func:`automnist.runner.split_indices` gives Keras Tuner trials with
  ``search.cv``, so fold scores of both kinds of run compare pairwise;
* ``n_jobs = search.n_jobs`` (joblib), ``error_score=nan`` (a failing candidate is
  recorded, the search goes on).

Every candidate (for halving: every candidate of every iteration) becomes one
:class:`~automnist.records.TrialRecord` committed with ``ctx.add_record``, in the same
store as Keras Tuner runs: ``val_accuracy``/``val_loss`` are the fold means of the
held-out scores (``accuracy``/``loss`` of the training folds), ``*_std`` their standard
deviations (ddof=1, as the runner), ``folds`` each fold's scores, ``duration_s`` is
``mean_fit_time * n_splits``.  The best candidate is refit on the whole training split,
evaluated on the test split (``test_accuracy``, ``test_loss``) and saved with
:func:`automnist.artifacts.save_best_model`.

Limits: scikit-learn searches are atomic, so ``search.time_budget`` is only checked before
the search starts, and a resumed run that was interrupted searches again (a finished one
is reloaded).  ``sklearn-grid`` honours ``max_trials`` like Keras Tuner's grid: the first
``max_trials`` points of the grid (in ``ParameterGrid`` order) are searched.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, Any

from automnist.artifacts import save_best_model
from automnist.builders import build_model, resolve_learning_rate
from automnist.errors import InfeasibleConfig, SpecError
from automnist.records import TrialRecord, best_trial, objective_direction
from automnist.sklearn_api.classifier import KerasCNNClassifier, estimator_params
from automnist.space import complete_config, sklearn_distributions, sklearn_grid
from automnist.spec import DEFAULTS, ChoiceParam, FloatParam, IntParam, SearchSpec

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["run", "planned_trials", "REFITS_BEST"]

#: The strategy refits and saves its best model itself (``run_search`` need not).
REFITS_BEST = True

_SCORERS = {"val_accuracy": "accuracy", "val_loss": "neg_log_loss"}


def _check_spec(spec: SearchSpec) -> None:
    """Reject what a KerasCNNClassifier search cannot express, naming the key."""
    for p in spec.params:
        if p.name not in DEFAULTS:
            base = p.name.rpartition("_")[0]
            raise SpecError(
                spec.source, f"params.{p.name}",
                f"per-layer overrides are not parameters of KerasCNNClassifier, which scikit-learn strategies "
                f"search; give {base} as a list per layer instead (e.g. {base}: {{choice: [[64, 32], [128, 64]]}})",
            )
    s = spec.search
    if s.strategy == "sklearn-halving" and s.resource == "epochs" and "epochs" in {p.name for p in spec.tunable}:
        raise SpecError(spec.source, "search.resource",
                        "successive halving over epochs needs a fixed number of epochs, but params.epochs is searched; "
                        "use resource: n_samples or fix epochs")


def _discrete(spec: SearchSpec) -> bool:
    return all(
        isinstance(p, (ChoiceParam, IntParam)) or (isinstance(p, FloatParam) and p.step is not None)
        for p in spec.tunable
    )


def _grid_size(spec: SearchSpec) -> int:
    n = 1
    for values in sklearn_grid(spec).values():
        n *= len(values)
    return n


def _objective_metric(spec: SearchSpec) -> str:
    """The held-out metric scikit-learn ranks by: ``val_loss`` for a loss objective."""
    return "val_loss" if objective_direction(spec.objective.name) == "min" else "val_accuracy"


def planned_trials(spec: SearchSpec) -> int | None:
    """How many records the search will add (an estimate for successive halving)."""
    s = spec.search
    n_iter = s.n_iter or s.max_trials
    if s.strategy == "sklearn-grid":
        return min(_grid_size(spec), s.max_trials)
    if s.strategy == "sklearn-random":
        return min(n_iter, _grid_size(spec)) if _discrete(spec) else n_iter
    n0 = _grid_size(spec) if _discrete(spec) else n_iter
    f = s.factor
    required = 1 + int(math.floor(math.log(n0, f) + 1e-9)) if n0 > 1 else 1
    if s.resource == "epochs":
        smallest = max(1, s.epochs // f ** (required - 1)) if _discrete(spec) else 1
        required = min(required, 1 + int(math.floor(math.log(max(1, s.epochs // smallest), f) + 1e-9)))
    return sum(math.ceil(n0 / f**i) for i in range(required))


def _base_estimator(spec: SearchSpec) -> Any:
    fixed = spec.fixed_values()
    params = estimator_params(fixed)
    params["epochs"] = int(fixed.get("epochs") or spec.search.epochs)
    return KerasCNNClassifier(model=spec.model, random_state=spec.search.seed, verbose=0, **params)


def _make_search(spec: SearchSpec, estimator: Any, cv: Any, verbose: int) -> tuple[Any, dict[str, str]]:
    """The scikit-learn search object and ``{metric: scorer key in cv_results_}``."""
    import numpy as np
    from sklearn.model_selection import GridSearchCV, ParameterGrid, RandomizedSearchCV

    s = spec.search
    common: dict[str, Any] = dict(cv=cv, n_jobs=s.n_jobs, refit=False, error_score=np.nan,
                                  return_train_score=True, verbose=verbose)
    if s.strategy in ("sklearn-grid", "sklearn-random"):
        scoring = dict(_SCORERS)
        keys = {m: m for m in scoring}
        if s.strategy == "sklearn-grid":
            grid: Any = sklearn_grid(spec)
            points = list(ParameterGrid(grid))
            if len(points) > s.max_trials:
                grid = [{k: [v] for k, v in point.items()} for point in points[: s.max_trials]]
            return GridSearchCV(estimator, grid, scoring=scoring, **common), keys
        return RandomizedSearchCV(estimator, sklearn_distributions(spec), n_iter=s.n_iter or s.max_trials,
                                  random_state=s.seed, scoring=scoring, **common), keys
    if s.strategy != "sklearn-halving":
        raise ValueError(f"search.strategy: {s.strategy!r} is not a scikit-learn strategy")
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV

    metric = _objective_metric(spec)
    halving = dict(scoring=_SCORERS[metric], factor=s.factor, resource=s.resource,
                   max_resources=s.epochs if s.resource == "epochs" else "auto", **common)
    if _discrete(spec):
        return HalvingGridSearchCV(estimator, sklearn_grid(spec), **halving), {metric: "score"}
    return HalvingRandomSearchCV(estimator, sklearn_distributions(spec), n_candidates=s.n_iter or s.max_trials,
                                 random_state=s.seed, **halving), {metric: "score"}


def _failure_summary(messages: list[str]) -> str:
    """The last line of each distinct traceback in scikit-learn's FitFailedWarnings."""
    lines: list[str] = []
    for message in messages:
        for chunk in message.split("-" * 80)[1:]:
            body = [line for line in chunk.strip().splitlines() if line.strip()]
            if body and body[-1] not in lines:
                lines.append(body[-1].strip())
    return "; ".join(lines)[:2000] or "scikit-learn recorded no score for this candidate"


def _model_size(
    values: dict[str, Any], input_shape: tuple[int, ...], n_classes: int, model: str
) -> tuple[int | None, str | None]:
    """(parameter count, None), or (None, why the configuration cannot be built)."""
    try:
        net = build_model(values, input_shape, n_classes, model=model, compile=False)
    except InfeasibleConfig as exc:
        return None, str(exc)
    except Exception:  # noqa: BLE001 - only a size; the fit itself reports real errors
        return None, None
    return int(net.count_params()), None


def _records(ctx: SearchContext, search: Any, keys: dict[str, str], failures: list[str], t0: float, t1: float,
             n_splits: int, default_epochs: int) -> list[TrialRecord]:
    import keras
    import numpy as np

    spec = ctx.spec
    results = search.cv_results_
    objective = _objective_metric(spec)
    failure = _failure_summary(failures)
    records = []
    for i, candidate in enumerate(results["params"]):
        values = resolve_learning_rate(complete_config(spec, candidate))
        record = TrialRecord(trial_id=f"{i:04d}", number=i, params=values, seed=spec.search.seed,
                             started_at=t0, ended_at=t1)
        record.epochs = int(values.get("epochs") or default_epochs)
        record.duration_s = float(results["mean_fit_time"][i]) * n_splits
        folds: list[dict[str, Any]] = [{"fold": k} for k in range(n_splits)]
        for metric, key in keys.items():
            sign = -1.0 if metric.endswith("loss") else 1.0  # neg_log_loss -> loss
            train_metric = metric.removeprefix("val_")
            for prefix, name in (("test", metric), ("train", train_metric)):
                scores = np.asarray([sign * float(results[f"split{k}_{prefix}_{key}"][i]) for k in range(n_splits)])
                for k, value in enumerate(scores):
                    folds[k][name] = float(value)
                record.metrics[name] = float(np.mean(scores))
                record.metrics[f"{name}_std"] = float(np.std(scores, ddof=1)) if n_splits > 1 else 0.0
        if "n_resources" in results:
            record.metrics["n_resources"] = float(results["n_resources"][i])
            record.metrics["iteration"] = float(results["iter"][i])
        record.folds = folds
        record.n_params, infeasible = _model_size(values, ctx.data.input_shape, ctx.data.n_classes, spec.model)
        if not math.isfinite(record.metrics.get(objective, float("nan"))):
            record.status, record.error = ("infeasible", infeasible) if infeasible else ("failed", failure)
        records.append(record)
    keras.backend.clear_session(free_memory=False)
    return records


def _pick_best(ctx: SearchContext, records: list[TrialRecord], results: dict[str, Any]) -> int | None:
    """Index of the best ok record; for halving, among the last iteration's candidates."""
    import numpy as np

    allowed = list(range(len(records)))
    if "iter" in results:
        last = int(np.max(results["iter"]))
        allowed = [i for i in allowed if int(results["iter"][i]) == last]
    best = best_trial([records[i] for i in allowed], ctx.spec.objective.name, ctx.spec.objective.direction)
    return None if best is None else next(i for i in allowed if records[i] is best)


def _refit_and_save(ctx: SearchContext, search: Any, index: int, record: TrialRecord) -> None:
    """Train the best candidate on the whole training split, test it, save it."""
    from sklearn.base import clone

    data = ctx.data
    estimator = clone(search.estimator).set_params(**search.cv_results_["params"][index])
    estimator.fit(data.x_train, data.y_train)
    if data.x_test is not None and data.y_test is not None and len(data.x_test):
        y_test = estimator.target_encoder_.transform(data.y_test)
        loss, accuracy = estimator.model_.evaluate(data.x_test, y_test, batch_size=512, verbose=0)
        record.metrics["test_loss"], record.metrics["test_accuracy"] = float(loss), float(accuracy)
    save_best_model(estimator.model_, ctx.dataset, ctx.run_dir, record.trial_id)


def _reload_finished(ctx: SearchContext) -> bool:
    """On resume: re-track a finished grid/random search instead of searching again."""
    n = planned_trials(ctx.spec)
    if ctx.spec.search.strategy == "sklearn-halving" or not n:
        return False
    ids = [f"{i:04d}" for i in range(n)]
    if not all(ctx.finished(trial_id) is not None for trial_id in ids):
        return False
    for trial_id in ids:
        ctx.evaluate(trial_id, {})
    return True


def run(ctx: SearchContext) -> None:
    """Run the spec's scikit-learn search and commit one record per candidate."""
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import StratifiedKFold

    spec = ctx.spec
    _check_spec(spec)
    if ctx.resume and _reload_finished(ctx):
        return
    if not ctx.time_left():
        return
    estimator = _base_estimator(spec)
    n_splits = spec.search.cv or 3
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=spec.search.seed)
    search, keys = _make_search(spec, estimator, cv, ctx.verbose)
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitFailedWarning)
        search.fit(ctx.data.x_train, ctx.data.y_train)
    t1 = time.time()
    failures = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
    for w in caught:
        if not issubclass(w.category, FitFailedWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    records = _records(ctx, search, keys, failures, t0, t1, n_splits, estimator.epochs)
    best = _pick_best(ctx, records, search.cv_results_)
    if best is not None:
        _refit_and_save(ctx, search, best, records[best])
    for record in records:
        ctx.add_record(record)
