"""scikit-learn estimators: a Keras CNN/MLP classifier on scikeras, and an AutoML classifier.

:class:`KerasCNNClassifier`
    A scikit-learn classifier whose constructor parameters are the spec's hyperparameters
    (:data:`automnist.spec.DEFAULTS`).  It is a subclass of scikeras'
    :class:`~scikeras.wrappers.KerasClassifier` that builds its network with
    :func:`automnist.builders.build_model`, so it clones, pickles, goes into ``Pipeline``,
    ``GridSearchCV`` and ``cross_val_score`` like any scikit-learn classifier.
:class:`AutoCNNClassifier`
    ``fit(X, y)`` runs a whole automnist search (any strategy) on ``X, y``, records it in a
    results store and refits the best configuration on all of ``X, y``.
:func:`cross_validate_spec`
    Stratified k-fold cross-validation of one configuration of a spec, stored as a run of
    kind ``cv`` (the ``automnist cv`` command).

The scikeras tags shim
----------------------
scikeras 0.13 predates scikit-learn's ``__sklearn_tags__`` (1.6).  Its classes inherit
``BaseEstimator`` *before* ``ClassifierMixin``, so ``BaseEstimator.__sklearn_tags__``
answers first and the classifier tags are lost: on scikit-learn >= 1.7
``is_classifier(KerasClassifier(...))`` is silently False (``cross_val_score(cv=10)`` and
``GridSearchCV(cv=10)`` use ``KFold`` instead of ``StratifiedKFold``, ``roc_auc`` scorers
give NaN), and on 1.6 it raises ``AttributeError`` about ``__sklearn_tags__``.

Importing this module installs ``__sklearn_tags__`` on scikeras' ``BaseWrapper``,
``KerasClassifier`` and ``KerasRegressor`` (only where scikeras does not define it, so a
fixed scikeras release is left alone).  The methods translate scikeras' legacy ``_tags``
(``poor_score``, ``multioutput``, ``multilabel``) and set ``estimator_type``,
``classifier_tags``/``regressor_tags`` and ``target_tags.required`` as scikit-learn's own
mixins do.  The patch is deliberately applied to scikeras' classes, not just to
:class:`KerasCNNClassifier`: every ``KerasClassifier`` in the process (e.g. seed 004's
chapter-2 code) gets stratified folds, and ``check_estimator_tags_renamed`` passes for
subclasses.  :class:`KerasCNNClassifier` also sets its own tags explicitly, so it does not
depend on the shim.

Importing this module imports scikeras, hence Keras and TensorFlow (the class must
subclass scikeras' at definition time); ``import automnist`` does not import it.
"""

from __future__ import annotations

import math
import tempfile
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scikeras.wrappers import BaseWrapper, KerasClassifier, KerasRegressor
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from automnist.runner import forget_custom_gradients
from automnist.errors import SpecError
from automnist.spec import DEFAULTS, SearchSpec

__all__ = [
    "AutoCNNClassifier",
    "HYPERPARAMETERS",
    "KerasCNNClassifier",
    "cross_validate_spec",
    "estimator_params",
]

#: Hyperparameters of a spec that are constructor parameters of :class:`KerasCNNClassifier`.
HYPERPARAMETERS: tuple[str, ...] = tuple(DEFAULTS)

_D = DEFAULTS


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


# --------------------------------------------------------------------------- tags shim


def _install_scikeras_tags_shim() -> None:
    """Give scikeras' wrappers the ``__sklearn_tags__`` scikit-learn >= 1.6 asks for."""
    from sklearn.utils import ClassifierTags, RegressorTags

    def base_tags(self: Any) -> Any:
        tags = super(BaseWrapper, self).__sklearn_tags__()
        legacy = getattr(self, "_tags", {}) or {}
        tags.target_tags.multi_output = bool(legacy.get("multioutput", False))
        return tags

    def classifier_tags(self: Any) -> Any:
        tags = super(KerasClassifier, self).__sklearn_tags__()
        legacy = getattr(self, "_tags", {}) or {}
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags(
            poor_score=bool(legacy.get("poor_score", False)),
            multi_label=bool(legacy.get("multilabel", False)),
        )
        tags.target_tags.required = True
        return tags

    def regressor_tags(self: Any) -> Any:
        tags = super(KerasRegressor, self).__sklearn_tags__()
        legacy = getattr(self, "_tags", {}) or {}
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags(poor_score=bool(legacy.get("poor_score", False)))
        tags.target_tags.required = True
        return tags

    for cls, method in ((BaseWrapper, base_tags), (KerasClassifier, classifier_tags), (KerasRegressor, regressor_tags)):
        if "__sklearn_tags__" not in vars(cls):
            method.__qualname__ = f"{cls.__name__}.__sklearn_tags__"
            method.__doc__ = "Estimator tags (installed by automnist.estimator: scikeras 0.13 lacks them)."
            cls.__sklearn_tags__ = method  # type: ignore[attr-defined]


_install_scikeras_tags_shim()


# --------------------------------------------------------------------------- helpers


def _plain_value(v: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain Python values (as in a YAML spec)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain_value(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain_value(x) for k, x in v.items()}
    return v


def _check_image_shape(image_shape: Any, owner: str) -> tuple[int, ...] | None:
    if image_shape is None:
        return None
    ok = isinstance(image_shape, (list, tuple)) and len(image_shape) in (2, 3)
    ok = ok and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in image_shape)
    if not ok:
        raise ValueError(
            f"{owner}: parameter image_shape: must be None, (height, width) or (height, width, channels) "
            f"of positive integers, got {image_shape!r}"
        )
    shape = tuple(int(s) for s in image_shape)
    return shape + (1,) if len(shape) == 2 else shape


def _infer_input_shape(
    sample_shape: tuple[int, ...], image_shape: Any, needs_images: bool, owner: str
) -> tuple[int, ...]:
    """The shape the network sees for one sample of ``sample_shape`` (see ``KerasCNNClassifier``)."""
    wanted = _check_image_shape(image_shape, owner)
    size = int(np.prod(sample_shape))
    if wanted is not None:
        if int(np.prod(wanted)) != size or (len(sample_shape) > 1 and not _same_image(sample_shape, wanted)):
            raise ValueError(
                f"{owner}: parameter image_shape: {wanted} holds {int(np.prod(wanted))} values per image, "
                f"but X has samples of shape {tuple(sample_shape)} ({size} values)"
            )
        return wanted
    if len(sample_shape) == 3:
        return tuple(sample_shape)
    if len(sample_shape) == 2:
        return (*sample_shape, 1)
    if not needs_images:
        return (size,)
    side = math.isqrt(size)
    if side * side != size:
        raise ValueError(
            f"{owner}: X is flat with {size} features, which is not a square image; pass "
            f"image_shape=(height, width) or (height, width, channels) with height*width*channels == {size} "
            f"(e.g. image_shape=(28, 28) for flat MNIST), or use model='mlp' for tabular data"
        )
    warnings.warn(
        f"{owner}: image_shape=None and X is flat with {size} features: treating each row as a "
        f"{side}x{side} single-channel image; pass image_shape=(height, width[, channels]) to choose "
        f"the shape and silence this warning",
        UserWarning,
        stacklevel=2,
    )
    return (side, side, 1)


def _same_image(sample_shape: Sequence[int], image_shape: Sequence[int]) -> bool:
    return tuple(sample_shape) == tuple(image_shape) or (*sample_shape, 1) == tuple(image_shape)


def _to_input_shape(X: np.ndarray, input_shape: tuple[int, ...], owner: str) -> np.ndarray:
    sample = tuple(X.shape[1:])
    if sample == input_shape:
        return X
    fits = int(np.prod(sample)) == int(np.prod(input_shape)) and (
        X.ndim == 2 or len(input_shape) == 1 or (*sample, 1) == input_shape
    )
    if not fits:
        raise ValueError(
            f"X has samples of shape {sample}, but {owner} was fitted on samples of shape {input_shape}"
        )
    return X.reshape((X.shape[0], *input_shape))


class _ImageShaper(TransformerMixin, BaseEstimator):
    """scikeras feature encoder: validated arrays -> the shape the network takes.

    ``fit`` decides ``input_shape_`` (see :class:`KerasCNNClassifier`); ``transform``
    reshapes flat rows or adds the channel axis.
    """

    def __init__(self, image_shape: Any = None, needs_images: bool = True, owner: str = "KerasCNNClassifier") -> None:
        self.image_shape = image_shape
        self.needs_images = needs_images
        self.owner = owner

    def fit(self, X: np.ndarray, y: Any = None) -> _ImageShaper:
        self.input_shape_ = _infer_input_shape(tuple(X.shape[1:]), self.image_shape, self.needs_images, self.owner)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return _to_input_shape(np.asarray(X), self.input_shape_, self.owner)


class _TargetEncoder(TransformerMixin, BaseEstimator):
    """scikeras target encoder: labels of any type <-> class indices or one-hot rows.

    Unlike scikeras' default it one-hot encodes binary targets too (the network always
    ends in a softmax over ``n_classes`` units) and returns 2-D probabilities.
    """

    def __init__(self, one_hot: bool = True, classes: Any = None) -> None:
        self.one_hot = one_hot
        self.classes = classes

    def fit(self, y: np.ndarray) -> _TargetEncoder:
        from sklearn.preprocessing import LabelEncoder

        self.encoder_ = LabelEncoder().fit(y if self.classes is None else np.asarray(self.classes))
        self.classes_ = self.encoder_.classes_
        self.n_classes_ = int(len(self.classes_))
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        idx = self.encoder_.transform(y)
        if self.one_hot:
            return np.eye(self.n_classes_, dtype=np.float32)[idx]
        return idx.astype(np.int64)

    def inverse_transform(self, y: np.ndarray, return_proba: bool = False) -> np.ndarray:
        prob = np.asarray(y)
        if return_proba:
            return prob
        return self.classes_[np.argmax(prob, axis=1)]

    def get_metadata(self) -> dict[str, Any]:
        return {"classes_": self.classes_, "n_classes_": self.n_classes_, "n_outputs_": 1, "n_outputs_expected_": 1}


def estimator_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor parameters of :class:`KerasCNNClassifier` from a (trial) configuration.

    Per-layer overrides (``units_2``, ``filters_1``, ...) are folded into the per-layer
    lists, so the network is the same; keys that are not hyperparameters are dropped.
    """
    from automnist.builders import per_layer

    out = {k: _plain_value(values[k]) for k in HYPERPARAMETERS if k in values}
    full = {**DEFAULTS, **dict(values)}
    for key, count in (("filters", "conv_layers"), ("kernel_size", "conv_layers"), ("units", "dense_layers")):
        n = int(full.get(count) or 0)
        if n and any(values.get(f"{key}_{i + 1}") is not None for i in range(n)):
            out[key] = per_layer(full, key, n)
    return out


# --------------------------------------------------------------------------- KerasCNNClassifier


class KerasCNNClassifier(KerasClassifier):
    """A Keras CNN (or MLP) image classifier with the scikit-learn API, on scikeras.

    The constructor parameters are the hyperparameters of a search spec (see
    :data:`automnist.spec.DEFAULTS`); they are stored untouched and validated by ``fit``
    with the spec's own rules, so a bad value raises ``ValueError`` naming the parameter,
    the rule and the value.  The network is built by :func:`automnist.builders.build_model`;
    a configuration that cannot fit the images (e.g. too many poolings for 8x8 digits)
    raises :class:`automnist.errors.InfeasibleConfig` with the reason.

    Parameters
    ----------
    model : {"cnn", "mlp"}, default "cnn"
        Network family (called ``model`` as in a spec; scikeras' ``model`` build-function
        parameter is replaced by the builder).
    conv_layers, convs_per_block, filters, kernel_size, strides, padding, pooling, pool_size, \
conv_dropout, batch_norm :
        Convolutional part (``cnn`` only).  ``filters`` / ``kernel_size`` take an int or a
        tuple with one value per block, ``padding`` / ``strides`` a value or a tuple with
        one value per convolution of a block.
    dense_layers, units, dropout, activation, leaky_relu_slope, kernel_initializer :
        Dense part; ``units`` is an int or a tuple per layer.
    optimizer, learning_rate, momentum, nesterov, loss, batch_size :
        Training; ``learning_rate`` is a number or ``{optimizer: number}``; ``loss`` is
        ``categorical_crossentropy`` (one-hot targets), ``sparse_categorical_crossentropy``
        or ``kl_divergence``.
    epochs : int, default 10
    augmentation : dict, optional
        ``{rotation, shift, zoom, shear, horizontal_flip}`` as in a spec (images only).
    validation_split : float, optional
        Stratified hold-out fraction watched during training (``val_loss``,
        ``val_accuracy`` in ``history_``); None trains on everything.
    random_state : int, RandomState or None
        Seeds weight initialisation, shuffling, dropout and augmentation
        (``keras.utils.set_random_seed``, which also seeds Python's and NumPy's global
        generators).  None: not seeded.
    verbose : int, default 0
        Keras' ``fit``/``predict`` verbosity.
    image_shape : tuple, optional
        ``(height, width)`` or ``(height, width, channels)`` of one image, for flat input.

    Input
    -----
    ``X`` is ``(n, height, width)``, ``(n, height, width, channels)`` or flat
    ``(n, features)``.  Values are used as given (scale pixels to [0, 1] yourself, e.g.
    ``X / 255`` or a ``StandardScaler`` before it in a ``Pipeline``).  Flat rows become
    images of ``image_shape``; without it, a square number of features becomes a square
    single-channel image (with a warning saying so).  With ``model="mlp"`` and no
    augmentation, flat rows of any length are used as plain feature vectors, so the
    classifier also works on tabular data.  ``n_features_in_`` is the number of values per
    sample (``height * width * channels`` for images).  Labels ``y`` may be of any type
    (ints, strings); ``classes_`` holds them sorted.

    Attributes
    ----------
    classes_, n_classes_ : labels seen by ``fit`` and their number.
    n_features_in_ : int
    feature_names_in_ : column names, when ``X`` was a DataFrame.
    input_shape_ : tuple
        The per-sample shape the network takes.
    model_ : keras.Model
    history_ : dict of list
        Per-epoch ``loss``, ``accuracy`` (and ``val_*`` with ``validation_split``).

    Notes
    -----
    Each ``fit`` calls ``keras.backend.clear_session()`` before building and unregisters
    the gradient functions TensorFlow leaks per traced train step, so thousands of fits in
    a ``GridSearchCV`` keep memory flat; already fitted estimators keep working.
    Training that diverges (NaN loss) raises ``ValueError``, which ``GridSearchCV`` with
    ``error_score=np.nan`` records as a failed candidate.
    """

    # scikeras reads these; they are fixed here, not constructor parameters
    build_fn = None
    warm_start = False
    metrics = None
    callbacks = None
    shuffle = True
    run_eagerly = False
    class_weight = None
    validation_batch_size = None

    def __init__(
        self,
        *,
        model: str = "cnn",
        conv_layers: int = _D["conv_layers"],
        convs_per_block: int = _D["convs_per_block"],
        filters: int | tuple[int, ...] = _tuple(_D["filters"]),
        kernel_size: int | tuple[int, ...] = _D["kernel_size"],
        strides: int = _D["strides"],
        padding: str = _D["padding"],
        pooling: str = _D["pooling"],
        pool_size: int = _D["pool_size"],
        conv_dropout: float = _D["conv_dropout"],
        batch_norm: bool = _D["batch_norm"],
        dense_layers: int = _D["dense_layers"],
        units: int | tuple[int, ...] = _D["units"],
        dropout: float = _D["dropout"],
        activation: str = _D["activation"],
        leaky_relu_slope: float = _D["leaky_relu_slope"],
        kernel_initializer: str = _D["kernel_initializer"],
        optimizer: str = _D["optimizer"],
        learning_rate: float = _D["learning_rate"],
        momentum: float = _D["momentum"],
        nesterov: bool = _D["nesterov"],
        loss: str = _D["loss"],
        batch_size: int = _D["batch_size"],
        epochs: int = 10,
        augmentation: Mapping[str, Any] | None = _D["augmentation"],
        validation_split: float | None = _D["validation_split"],
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        image_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.model = model
        self.conv_layers = conv_layers
        self.convs_per_block = convs_per_block
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.pooling = pooling
        self.pool_size = pool_size
        self.conv_dropout = conv_dropout
        self.batch_norm = batch_norm
        self.dense_layers = dense_layers
        self.units = units
        self.dropout = dropout
        self.activation = activation
        self.leaky_relu_slope = leaky_relu_slope
        self.kernel_initializer = kernel_initializer
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.loss = loss
        self.batch_size = batch_size
        self.epochs = epochs
        self.augmentation = augmentation
        self.validation_split = validation_split
        self.random_state = random_state
        self.verbose = verbose
        self.image_shape = image_shape

    # scikeras lists every instance attribute as a parameter; use scikit-learn's
    # signature-based list so clone/get_params see exactly the constructor arguments.
    _get_param_names = classmethod(BaseEstimator._get_param_names.__func__)  # type: ignore[attr-defined]
    __repr__ = BaseEstimator.__repr__

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags

        tags = BaseEstimator.__sklearn_tags__(self)
        tags.estimator_type = "classifier"
        # a net trained for a few epochs on scikit-learn's tiny check data scores poorly
        tags.classifier_tags = ClassifierTags(poor_score=True, multi_class=True, multi_label=False)
        tags.target_tags.required = True
        tags.target_tags.multi_output = False
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        return tags

    # -- validation
    def hyperparameters(self) -> dict[str, Any]:
        """The validated configuration (plain values), as :func:`build_model` takes it.

        Raises
        ------
        ValueError
            Naming the parameter, the rule and the value, for the first bad parameter.
        """
        from automnist.spec import parse_spec

        name = type(self).__name__
        values = {k: _plain_value(getattr(self, k)) for k in HYPERPARAMETERS}
        try:
            parse_spec({"name": "estimator", "model": self.model, "params": values}, source=name)
        except SpecError as exc:
            where = exc.path.removeprefix("params.")
            raise ValueError(f"{name}: parameter {where}: {exc.rule}") from None
        if values["epochs"] is None:
            raise ValueError(f"{name}: parameter epochs: must be an integer >= 1, got None")
        if self.verbose not in (0, 1, 2, "auto") or isinstance(self.verbose, bool):
            raise ValueError(f"{name}: parameter verbose: must be 0, 1, 2 or 'auto', got {self.verbose!r}")
        _check_image_shape(self.image_shape, name)
        return values

    def _validate_data(
        self, X: Any = None, y: Any = None, reset: bool = False, y_numeric: bool = False
    ) -> tuple[Any, Any]:
        """scikeras hook: numeric, finite ``X`` (2-D through scikit-learn's ``validate_data``,
        so feature names and ``n_features_in_`` behave as usual; images through
        ``check_array``) and 1-D classification targets ``y``."""
        from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d, validate_data

        name = type(self).__name__
        if X is not None:
            ndim = getattr(X, "ndim", None)
            if ndim is None:
                ndim = np.asarray(X, dtype=object).ndim
            if ndim > 2:
                X = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=True, input_name="X",
                                estimator=self)
                n_features = int(np.prod(X.shape[1:]))
                if reset:
                    self.n_features_in_ = n_features
                    if hasattr(self, "feature_names_in_"):
                        del self.feature_names_in_
                elif n_features != self.n_features_in_:
                    raise ValueError(
                        f"X has {n_features} features, but {name} is expecting {self.n_features_in_} features as input"
                    )
            else:
                X = validate_data(self, X, reset=reset, dtype=np.float32, ensure_all_finite=True)
        if y is None and reset and X is not None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        if y is not None:
            from sklearn.utils.multiclass import check_classification_targets, type_of_target

            y = column_or_1d(y, warn=True)
            if reset:
                check_classification_targets(y)
                self.target_type_ = type_of_target(y)
            if X is not None:
                check_consistent_length(X, y)
        return X, y

    # -- scikeras hooks
    @property
    def target_encoder(self) -> _TargetEncoder:
        from automnist.builders import uses_one_hot

        return _TargetEncoder(one_hot=uses_one_hot(str(self.loss)), classes=getattr(self, "classes_", None))

    @property
    def feature_encoder(self) -> _ImageShaper:
        needs_images = self.model == "cnn" or bool(self.augmentation)
        return _ImageShaper(image_shape=self.image_shape, needs_images=needs_images, owner=type(self).__name__)

    def _initialize(self, X: Any, y: Any = None) -> tuple[Any, Any]:
        self._config = self.hyperparameters()
        return super()._initialize(X, y)

    def _build_keras_model(self) -> Any:
        import keras

        from automnist.builders import build_model

        self.input_shape_ = tuple(self.feature_encoder_.input_shape_)
        # Drop Keras' global state of earlier fits.  No gc.collect() here: it costs ~0.3 s
        # per fit with TensorFlow loaded and Python's own collector frees the old models.
        keras.backend.clear_session(free_memory=False)
        seed = self._random_state
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        return build_model(
            self._config, self.input_shape_, int(self.n_classes_), model=self.model,
            seed=None if seed is None else int(seed),
        )

    def _check_model_compatibility(self, y: np.ndarray) -> None:
        """The model was built from ``loss`` here: nothing to cross-check (scikeras'
        name comparison rejects e.g. ``kl_divergence`` vs ``KLDivergence``)."""

    def _fit_keras_model(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        warm_start: bool,
        epochs: int,
        initial_epoch: int,
        **kwargs: Any,
    ) -> None:
        import keras

        validation_data = None
        if self.validation_split:
            tr, va = self._validation_indices(y)
            validation_data = (X[va], y[va]) if sample_weight is None else (X[va], y[va], sample_weight[va])
            X, y = X[tr], y[tr]
            sample_weight = None if sample_weight is None else sample_weight[tr]
        fit_args: dict[str, Any] = {
            "batch_size": int(self.batch_size),
            "epochs": int(initial_epoch + epochs),
            "initial_epoch": int(initial_epoch),
            "verbose": self.verbose,
            "shuffle": True,
            "sample_weight": sample_weight,
            "validation_data": validation_data,
            "callbacks": [keras.callbacks.TerminateOnNaN(), *self._fit_callbacks],
        }
        fit_args.update(kwargs)
        with forget_custom_gradients():
            hist = self.model_.fit(X, y, **fit_args)
        if not warm_start or not hasattr(self, "history_") or initial_epoch == 0:
            self.history_ = defaultdict(list)
        for key, values in hist.history.items():
            self.history_[key] += [float(v) for v in values]
        losses = hist.history.get("loss", [])
        if not losses or not math.isfinite(float(losses[-1])):
            raise ValueError(
                f"{type(self).__name__}: training diverged: the loss is {losses[-1] if losses else 'missing'} "
                f"after {len(losses)} epoch(s) (learning_rate={self.learning_rate!r}, optimizer={self.optimizer!r}); "
                "lower the learning rate or scale the inputs"
            )

    def _validation_indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.model_selection import train_test_split

        from automnist.runner import split_indices

        labels = np.argmax(y, axis=1) if y.ndim == 2 else y
        seed = 0 if self._random_state is None else int(self._random_state)
        try:
            ((tr, va),) = split_indices(labels, cv=None, validation_split=float(self.validation_split), seed=seed)
        except ValueError:  # a class too small to stratify: plain shuffled split
            tr, va = train_test_split(np.arange(len(labels)), test_size=float(self.validation_split), random_state=seed)
        return tr, va

    def _predict_raw(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Network outputs for ``X``: direct (eager) calls on chunks of 512 samples.

        ``keras.Model.predict`` traces a graph function for every new model (~0.3 s), which
        dominates scoring in cross-validation; the eager forward pass gives the same
        probabilities faster at any data size.  ``**kwargs`` go to ``Model.predict``.
        """
        import keras
        from sklearn.exceptions import NotFittedError

        if not self.initialized_:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first")
        X, _ = self._validate_data(X=X, y=None)
        X = self.feature_encoder_.transform(X)
        if kwargs:
            return self.model_.predict(X, **{"batch_size": 512, "verbose": self.verbose, **kwargs})
        chunks = [keras.ops.convert_to_numpy(self.model_(X[i : i + 512], training=False))
                  for i in range(0, len(X), 512)]
        n_out = self.model_.outputs[0].shape[-1]
        return np.concatenate(chunks) if chunks else np.zeros((0, n_out), dtype=np.float32)

    # -- public API (documented overrides)
    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> KerasCNNClassifier:
        """Build a new network and train it on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, h, w), (n, h, w, c) or (n, features)
        y : array-like of shape (n,)
            Labels of any type.
        sample_weight : array-like of shape (n,), optional
        **kwargs
            Passed to ``keras.Model.fit``.

        Returns
        -------
        self
        """
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def predict_proba(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``, columns in ``classes_`` order."""
        return super().predict_proba(X, **kwargs)


# --------------------------------------------------------------------------- AutoCNNClassifier


def _load_space(space: Any) -> SearchSpec:
    from automnist.spec import load_spec, parse_spec

    if space is None:
        return load_spec(Path(__file__).with_name("specs") / "demo.yaml")
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
        packaged demo spec.  Its ``data`` section is ignored except ``validation_split``
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
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        from automnist.data import Dataset
        from automnist.search import run_search

        spec = self._spec()
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"AutoCNNClassifier: parameter verbose: must be 0, 1 or 2, got {self.verbose!r}")
        X = np.asarray(X) if not hasattr(X, "ndim") else X
        X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float32, ensure_all_finite=True)
        check_classification_targets(y)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        needs_images = spec.model == "cnn" or any(p.name == "augmentation" for p in spec.params)
        input_shape = _infer_input_shape(tuple(X.shape[1:]), self.image_shape, needs_images, type(self).__name__)
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
        result = self._run(spec, ds, run_search)
        self.spec_ = spec
        self.search_run_ = result.run
        self._set_results(spec, result.trials, result.best)
        best = result.best
        params = estimator_params(best.params)
        params["epochs"] = int(best.params.get("epochs") or best.epochs or spec.search.epochs)
        params["validation_split"] = None
        seed = _int_seed(self.random_state)
        self.best_estimator_ = KerasCNNClassifier(
            model=spec.model, random_state=spec.search.seed if seed is None else seed,
            image_shape=input_shape, verbose=self.verbose, **params,
        ).fit(images, y)
        return self

    def _run(self, spec: SearchSpec, ds: Any, run_search: Any) -> Any:
        from automnist.errors import StoreError
        from automnist.store import Store

        base = self.run_name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
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

    def _set_results(self, spec: SearchSpec, trials: list[Any], best: Any) -> None:
        from scipy.stats import rankdata

        from automnist.space import active_params

        if best is None:
            lines = "; ".join(f"{t.trial_id}: {t.status} ({t.error})" for t in trials) or "no trial ran"
            raise ValueError(f"AutoCNNClassifier: no trial of run {self.search_run_!r} succeeded: {lines}")
        objective = spec.objective
        sign = 1.0 if objective.direction == "max" else -1.0
        n = len(trials)
        score = np.full(n, np.nan)
        std = np.full(n, np.nan)
        n_folds = max((len(t.folds) for t in trials), default=0)
        splits = np.full((n_folds, n), np.nan)
        for i, t in enumerate(trials):
            value = t.metrics.get(objective.name)
            if t.status == "ok" and value is not None and math.isfinite(value):
                score[i] = sign * value
                std[i] = t.metrics.get(f"{objective.name}_std", 0.0)
                for fold in t.folds:
                    if objective.name in fold:
                        splits[int(fold["fold"]), i] = sign * fold[objective.name]
        ranks = rankdata(np.where(np.isnan(score), np.inf, -score), method="min").astype(np.int32)  # failed: last
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
        results["rank_test_score"] = ranks
        for k in range(n_folds):
            results[f"split{k}_test_score"] = splits[k]
        results["status"] = np.asarray([t.status for t in trials], dtype=object)
        results["error"] = np.asarray([t.error or "" for t in trials], dtype=object)
        results["epochs"] = np.asarray([t.epochs for t in trials], dtype=np.int64)
        results["duration_s"] = np.asarray([t.duration_s for t in trials], dtype=float)
        self.cv_results_ = results
        self.best_index_ = next(i for i, t in enumerate(trials) if t.trial_id == best.trial_id)
        self.best_params_ = params[self.best_index_]
        self.best_score_ = float(sign * best.metrics[objective.name])

    def predict(self, X: Any) -> np.ndarray:
        """Labels predicted by ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from ``best_estimator_`` (columns in ``classes_`` order)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)


# --------------------------------------------------------------------------- k-fold CV of one configuration


def _best_params_of_run(store: Any, run: str, spec: SearchSpec) -> dict[str, Any]:
    trials = [t for t in store.get_trials(run) if t.status == "ok" and t.objective(spec.objective.name) is not None]
    if not trials:
        raise ValueError(f"from_run: run {run!r} has no successful trial with a {spec.objective.name}")
    pick = max if spec.objective.direction == "max" else min
    return dict(pick(trials, key=lambda t: t.objective(spec.objective.name)).params)


def cross_validate_spec(
    spec: SearchSpec | str | Path,
    folds: int = 10,
    *,
    params: Mapping[str, Any] | None = None,
    from_run: str | None = None,
    results_dir: str | Path = "results",
    run_name: str | None = None,
    data_dir: str | None = None,
    dataset: Any = None,
    seed: int | None = None,
    verbose: int = 0,
) -> Any:
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
    automnist.search.SearchResult
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
    from automnist.builders import resolve_learning_rate
    from automnist.errors import StoreError
    from automnist.experiments.lr_find import resolve_learning_rates, uses_lr_find
    from automnist.runner import TrialData, run_trial
    from automnist.runs import SearchResult, create_spec_run, prepare_data, run_dir
    from automnist.spec import load_spec
    from automnist.store import Store

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
    name = run_name or f"{spec.name}-cv-{time.strftime('%Y%m%d-%H%M%S')}"
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
        values = resolve_learning_rate(run_spec.complete(params or {}))
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
