"""An AutoML classifier: :class:`AutoCNNClassifier`, whose ``fit(X, y)`` runs a whole
automnist search (any strategy) on ``X, y``, records it in a results store and refits the
best configuration on all of ``X, y``."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from automnist.data import Dataset
from automnist.errors import SpecError, StoreError
from automnist.records import TrialRecord, score_key
from automnist.runs import SearchResult, default_run_name
from automnist.search import run_search
from automnist.sklearn_api.classifier import KerasCNNClassifier, estimator_params
from automnist.sklearn_api.inputs import infer_input_shape
from automnist.space import active_params
from automnist.spec import SearchSpec, load_spec, parse_spec
from automnist.store import Store

__all__ = ["AutoCNNClassifier"]

#: The spec searched when ``space`` is None, on a budget for one quick ``fit`` (about
#: 20 s on 2 CPU cores for scikit-learn's digits).
_DEMO_SPEC = Path(__file__).parents[1] / "specs" / "demo.yaml"
_DEFAULT_BUDGET = {"max_trials": 3, "epochs": 6}


def _load_space(space: Any) -> SearchSpec:
    if space is None:
        return load_spec(_DEMO_SPEC)
    if isinstance(space, SearchSpec):
        return space
    if isinstance(space, (str, Path)):
        return load_spec(space)
    if isinstance(space, Mapping):
        raw = dict(space)
        raw.setdefault("name", "auto")
        return parse_spec(raw)
    raise ValueError(
        f"AutoCNNClassifier: parameter space: must be None, a YAML path, a mapping or a SearchSpec, got {space!r}"
    )


def _int_seed(random_state: Any) -> int | None:
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    raise ValueError(f"parameter random_state: must be None, an int or a RandomState, got {random_state!r}")


class AutoCNNClassifier(ClassifierMixin, BaseEstimator):
    """An AutoML classifier: ``fit`` searches a spec's space and refits the best network.

    ``fit(X, y)`` runs :func:`automnist.search.run_search` on the arrays (any strategy:
    Keras Tuner's random/bayesian/hyperband/grid or scikit-learn's grid/random/halving),
    records the run in ``<results_dir>/automnist.db`` like any other search (so
    ``automnist report`` can compare it), then trains a :class:`KerasCNNClassifier` with
    the best configuration on all of ``X, y``.

    Parameters
    ----------
    space : str, path, mapping or SearchSpec, optional
        The search spec (a YAML file, its parsed mapping, or a spec).  Default: the
        packaged demo spec (a CNN whose 1-2 'same' blocks fit any image of at least
        4x4) with 3 trials of 6 epochs.  Its ``data`` section is ignored except ``validation_split``
        (the arrays passed to ``fit`` are the data).
    strategy, max_trials, epochs, cv : optional
        Override ``search.strategy``, ``search.max_trials``, ``search.epochs`` and
        ``search.cv`` of the spec.
    random_state : int, optional
        Overrides ``search.seed``; also seeds the final refit.  None: the spec's seed.
    results_dir : str or path, optional
        Where the store and run files go.  Default: a new temporary directory per fit
        (see ``results_dir_``).
    run_name : str, optional
        Name of the run in the store; when taken (e.g. by an earlier fit or by another
        clone in nested cross-validation), ``-2``, ``-3``, ... is appended.  Default:
        ``<spec name>-<timestamp>-<random suffix>``.
    image_shape : tuple, optional
        Shape of one image for flat ``X`` (as in :class:`KerasCNNClassifier`).
    verbose : int, default 0

    Attributes
    ----------
    best_params_ : dict
        The searched hyperparameters of the best trial (those whose conditions apply).
    best_score_ : float
        Its objective, higher-is-better (``val_accuracy``, or ``-val_loss`` for a loss).
    cv_results_ : dict of numpy arrays
        One entry per trial: ``trial_id``, ``params``, ``param_<name>`` (masked where the
        parameter does not apply), ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, ``split<i>_test_score`` (with cross-validation), ``status``,
        ``error``, ``epochs``, ``duration_s``.  ``pandas.DataFrame(cv_results_)`` works.
    best_estimator_ : KerasCNNClassifier
    search_run_ : str
        The run's name in the store.
    results_dir_ : pathlib.Path
    spec_ : SearchSpec
        The spec searched (overrides applied).
    classes_, n_features_in_ :
    """

    def __init__(
        self,
        *,
        space: Any = None,
        strategy: str | None = None,
        max_trials: int | None = None,
        epochs: int | None = None,
        cv: int | None = None,
        random_state: int | None = None,
        results_dir: str | Path | None = None,
        run_name: str | None = None,
        image_shape: tuple[int, ...] | None = None,
        verbose: int = 0,
    ) -> None:
        self.space = space
        self.strategy = strategy
        self.max_trials = max_trials
        self.epochs = epochs
        self.cv = cv
        self.random_state = random_state
        self.results_dir = results_dir
        self.run_name = run_name
        self.image_shape = image_shape
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        tags.input_tags.three_d_array = True
        tags.non_deterministic = True
        return tags

    def _spec(self) -> SearchSpec:
        spec = _load_space(self.space)
        if self.space is None:
            spec = spec.replace(**_DEFAULT_BUDGET)
        try:
            spec = spec.replace(
                strategy=self.strategy, max_trials=self.max_trials, epochs=self.epochs, cv=self.cv,
                seed=_int_seed(self.random_state), dataset="arrays",
            )
        except SpecError as exc:
            raise ValueError(f"AutoCNNClassifier: {exc}") from None
        if not spec.name:
            spec = spec.replace(name="auto")
        return spec

    def fit(self, X: Any, y: Any) -> AutoCNNClassifier:
        """Search the space on ``(X, y)`` and refit the best configuration on all of it.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a bad parameter, or when no trial of the search succeeded (the message
            gives each status and error).
        """
        spec = self._spec()
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"AutoCNNClassifier: parameter verbose: must be 0, 1 or 2, got {self.verbose!r}")
        X = np.asarray(X) if not hasattr(X, "ndim") else X
        X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float32, ensure_all_finite=True)
        check_classification_targets(y)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        needs_images = spec.model == "cnn" or any(p.name == "augmentation" for p in spec.params)
        input_shape = infer_input_shape(tuple(X.shape[1:]), self.image_shape, needs_images, type(self).__name__)
        if len(input_shape) == 1:  # an mlp on feature vectors: one row of "pixels"
            input_shape = (1, input_shape[0], 1)
        images = X.reshape((X.shape[0], *input_shape))
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        codes = encoder.transform(y).astype(np.int64)
        h, w, c = input_shape
        ds = Dataset(
            name="arrays",
            x_train=images,
            y_train=codes,
            x_test=np.zeros((0, h, w, c), dtype=np.float32),
            y_test=np.zeros(0, dtype=np.int64),
            class_names=tuple(str(k) for k in self.classes_),
            source=f"arrays passed to AutoCNNClassifier.fit: {len(codes)} images of {h}x{w}x{c}, no test split",
        )
        self.results_dir_ = Path(self.results_dir) if self.results_dir is not None else Path(
            tempfile.mkdtemp(prefix="automnist-")
        )
        result = self._search(spec, ds)
        self.spec_ = spec
        self.search_run_ = result.run
        self._set_results(spec, result.trials, result.best)
        best = result.best
        params = {k: v for k, v in estimator_params(best.params).items() if v is not None}  # inactive: None
        params["epochs"] = int(best.params.get("epochs") or best.epochs or spec.search.epochs)
        params["validation_split"] = None
        seed = _int_seed(self.random_state)
        self.best_estimator_ = KerasCNNClassifier(
            model=spec.model, random_state=spec.search.seed if seed is None else seed,
            image_shape=input_shape, verbose=self.verbose, **params,
        ).fit(images, y)
        return self

    def _search(self, spec: SearchSpec, ds: Dataset) -> SearchResult:
        """:func:`automnist.search.run_search` under the first free run name."""
        base = self.run_name or default_run_name(spec, unique=True)
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            with Store.at(self.results_dir_) as store:
                if store.get_run(name) is not None:
                    continue
            try:
                return run_search(spec, results_dir=self.results_dir_, run_name=name, dataset=ds,
                                  progress=False, verbose=max(0, self.verbose - 1))
            except StoreError as exc:  # taken meanwhile by a parallel fit
                if "already exists" not in str(exc):
                    raise
        raise ValueError(f"AutoCNNClassifier: parameter run_name: no free name of the form {base}-N")

    def _set_results(self, spec: SearchSpec, trials: list[TrialRecord], best: TrialRecord | None) -> None:
        """``cv_results_``, ``best_index_``, ``best_params_`` and ``best_score_`` from the trials.

        Scores are higher-is-better (a loss negated); trials rank by
        :func:`automnist.records.score_key`, so float-noise ties share a rank, and trials
        without a score (failed, infeasible) rank last.
        """
        if best is None:
            lines = "; ".join(f"{t.trial_id}: {t.status} ({t.error})" for t in trials) or "no trial ran"
            raise ValueError(f"AutoCNNClassifier: no trial of run {self.search_run_!r} succeeded: {lines}")
        name, direction = spec.objective.name, spec.objective.direction
        sign = 1.0 if direction == "max" else -1.0
        n = len(trials)
        score = np.full(n, np.nan)
        std = np.full(n, np.nan)
        key = np.full(n, -np.inf)
        n_folds = max((len(t.folds) for t in trials), default=0)
        splits = np.full((n_folds, n), np.nan)
        for i, t in enumerate(trials):
            k = score_key(t.objective(name), direction) if t.status == "ok" else None
            if k is None:
                continue
            key[i] = k
            score[i] = sign * t.objective(name)
            std[i] = t.metrics.get(f"{name}_std", 0.0)
            for fold in t.folds:
                if name in fold:
                    splits[int(fold["fold"]), i] = sign * fold[name]
        params = [active_params(spec, t.params) for t in trials]
        results: dict[str, Any] = {
            "trial_id": np.asarray([t.trial_id for t in trials], dtype=object),
            "params": params,
        }
        for p in spec.tunable:
            column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
            for i, values in enumerate(params):
                if p.name in values:
                    column[i] = values[p.name]
            results[f"param_{p.name}"] = column
        results["mean_test_score"] = score
        results["std_test_score"] = std
        results["rank_test_score"] = rankdata(-key, method="min").astype(np.int32)
        for k in range(n_folds):
            results[f"split{k}_test_score"] = splits[k]
        results["status"] = np.asarray([t.status for t in trials], dtype=object)
        results["error"] = np.asarray([t.error or "" for t in trials], dtype=object)
        results["epochs"] = np.asarray([t.epochs for t in trials], dtype=np.int64)
        results["duration_s"] = np.asarray([t.duration_s for t in trials], dtype=float)
        self.cv_results_ = results
        self.best_index_ = next(i for i, t in enumerate(trials) if t.trial_id == best.trial_id)
        self.best_params_ = params[self.best_index_]
        self.best_score_ = float(sign * best.objective(name))

    def predict(self, X: Any) -> np.ndarray:
        """Labels predicted by ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from ``best_estimator_`` (columns in ``classes_`` order)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)
