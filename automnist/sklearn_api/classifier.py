"""scikit-learn's face of one network: :class:`KerasCNNClassifier`, a Keras CNN (or MLP)
classifier on scikeras whose constructor parameters are a spec's hyperparameters.

It builds its network with :func:`automnist.builders.build_model`, so it clones, pickles,
goes into ``Pipeline``, ``GridSearchCV`` and ``cross_val_score`` like any scikit-learn
classifier.  Importing this module imports scikeras, hence Keras and TensorFlow (the class
must subclass scikeras' at definition time), and installs the scikeras tags shim
(:mod:`automnist.sklearn_api.tags`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
from scikeras.wrappers import KerasClassifier
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils import ClassifierTags

from automnist.builders import build_model, per_layer, uses_one_hot
from automnist.data import stratified_split
from automnist.errors import Diverged, SpecError
from automnist.records import plain_value
from automnist.runner import check_finite, forget_custom_gradients
from automnist.sklearn_api.inputs import AUTO_PARAMS, ImageShaper, TargetEncoder, canonical_order, check_image_shape
from automnist.sklearn_api.inputs import fit_architecture, validate_arrays
from automnist.sklearn_api.tags import install_scikeras_tags
from automnist.spec import DEFAULTS, parse_spec

__all__ = ["HYPERPARAMETERS", "KerasCNNClassifier", "estimator_params"]

install_scikeras_tags()

#: Hyperparameters of a spec that are constructor parameters of :class:`KerasCNNClassifier`.
HYPERPARAMETERS: tuple[str, ...] = tuple(DEFAULTS)

_D = DEFAULTS


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def estimator_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor parameters of :class:`KerasCNNClassifier` from a (trial) configuration.

    Per-layer overrides (``units_2``, ``filters_1``, ...) are folded into the per-layer
    lists, so the network is the same; keys that are not hyperparameters are dropped.
    """
    out = {k: plain_value(values[k]) for k in HYPERPARAMETERS if k in values}
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
        Convolutional part (``cnn`` only).  ``conv_layers`` and ``padding`` default to None:
        decided by ``fit`` from the image size (``model_config_``): the seed reports' two
        'valid' blocks where they fit (28x28), 'same' padding and then fewer blocks for
        smaller images (8x8 digits: two 'same' blocks).  ``filters`` / ``kernel_size`` take an int or a
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
    model_config_ : dict
        The configuration the network was built from, with ``conv_layers`` and
        ``padding`` as decided for the input.
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
        conv_layers: int | None = None,
        convs_per_block: int = _D["convs_per_block"],
        filters: int | tuple[int, ...] = _tuple(_D["filters"]),
        kernel_size: int | tuple[int, ...] = _D["kernel_size"],
        strides: int = _D["strides"],
        padding: str | None = None,
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
        name = type(self).__name__
        values = {k: plain_value(getattr(self, k)) for k in HYPERPARAMETERS}
        checked = {k: v for k, v in values.items() if not (k in AUTO_PARAMS and v is None)}  # None: decided at fit
        try:
            parse_spec({"name": "estimator", "model": self.model, "params": checked}, source=name)
        except SpecError as exc:
            where = exc.path.removeprefix("params.")
            raise ValueError(f"{name}: parameter {where}: {exc.rule}") from None
        if values["epochs"] is None:
            raise ValueError(f"{name}: parameter epochs: must be an integer >= 1, got None")
        if self.verbose not in (0, 1, 2, "auto") or isinstance(self.verbose, bool):
            raise ValueError(f"{name}: parameter verbose: must be 0, 1, 2 or 'auto', got {self.verbose!r}")
        check_image_shape(self.image_shape, name)
        return values

    def _validate_data(
        self, X: Any = None, y: Any = None, reset: bool = False, y_numeric: bool = False
    ) -> tuple[Any, Any]:
        """scikeras hook: :func:`automnist.sklearn_api.inputs.validate_arrays`."""
        return validate_arrays(self, X, y, reset=reset)

    # -- scikeras hooks
    @property
    def target_encoder(self) -> TargetEncoder:
        return TargetEncoder(one_hot=uses_one_hot(str(self.loss)), classes=getattr(self, "classes_", None))

    @property
    def feature_encoder(self) -> ImageShaper:
        needs_images = self.model == "cnn" or bool(self.augmentation)
        return ImageShaper(image_shape=self.image_shape, needs_images=needs_images, owner=type(self).__name__)

    def _initialize(self, X: Any, y: Any = None) -> tuple[Any, Any]:
        self._config = self.hyperparameters()
        return super()._initialize(X, y)

    def _build_keras_model(self) -> Any:
        import keras

        self.input_shape_ = tuple(self.feature_encoder_.input_shape_)
        self._config = fit_architecture(self._config, self.input_shape_, self.model)
        self.model_config_ = dict(self._config)
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
        try:
            check_finite(hist.history)
        except Diverged as exc:
            raise ValueError(
                f"{type(self).__name__}: {exc} (learning_rate={self.learning_rate!r}, optimizer={self.optimizer!r}); "
                "lower the learning rate or scale the inputs"
            ) from None

    def _validation_indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = np.argmax(y, axis=1) if y.ndim == 2 else y
        seed = 0 if self._random_state is None else int(self._random_state)
        tr, va, _ = stratified_split(labels, seed, test_size=float(self.validation_split))
        return tr, va

    def _predict_raw(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Network outputs for ``X``: direct (eager) calls on chunks of 512 samples, the
        rows in a canonical order.

        ``keras.Model.predict`` traces a graph function for every new model (~0.3 s), which
        dominates scoring in cross-validation; the eager forward pass gives the same
        probabilities faster at any data size.  ``**kwargs`` go to ``Model.predict``.

        A float32 matrix product rounds a row's result differently depending on where the
        row sits in the batch (by a few 1e-8), so the rows are fed sorted by their bytes
        (:func:`~automnist.sklearn_api.inputs.canonical_order`) and the outputs put back in the caller's order: the same
        rows in any order give bit-identical probabilities.
        """
        import keras

        if not self.initialized_:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first")
        X, _ = self._validate_data(X=X, y=None)
        X = self.feature_encoder_.transform(X)
        order = canonical_order(X)
        X = X[order]
        if kwargs:
            out = self.model_.predict(X, **{"batch_size": 512, "verbose": self.verbose, **kwargs})
        elif len(X):
            out = np.concatenate([keras.ops.convert_to_numpy(self.model_(X[i : i + 512], training=False))
                                  for i in range(0, len(X), 512)])
        else:
            out = np.zeros((0, self.model_.outputs[0].shape[-1]), dtype=np.float32)
        restored = np.empty_like(out)
        restored[order] = out
        return restored

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
