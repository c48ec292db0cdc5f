"""What the estimators do to their inputs: ``X`` and ``y`` validated, the network's input
shape for the rows of ``X``, and scikeras' feature (image) and target (label) encoders."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from automnist.builders import conv_plan
from automnist.errors import InfeasibleConfig
from automnist.spec import DEFAULTS
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

__all__ = ["AUTO_PARAMS", "ImageShaper", "TargetEncoder", "canonical_order", "check_image_shape", "fit_architecture",
           "infer_input_shape", "validate_arrays"]

#: Estimator parameters whose default (None) is decided at ``fit`` from the input's size.
AUTO_PARAMS: tuple[str, ...] = ("conv_layers", "padding")


def validate_arrays(estimator: BaseEstimator, X: Any, y: Any, *, reset: bool) -> tuple[Any, Any]:
    """Numeric, finite float32 ``X`` and 1-D classification targets ``y`` for ``estimator``.

    2-D ``X`` goes through scikit-learn's ``validate_data``, so feature names and
    ``n_features_in_`` behave as usual; images through ``check_array``, with
    ``n_features_in_`` the number of values per image.  ``reset`` (in ``fit``) records
    ``n_features_in_`` and ``target_type_`` on the estimator; otherwise they are checked.
    """
    name = type(estimator).__name__
    if X is not None:
        ndim = getattr(X, "ndim", None)
        if ndim is None:
            ndim = np.asarray(X, dtype=object).ndim
        if ndim > 2:
            X = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=True, input_name="X",
                            estimator=estimator)
            n_features = int(np.prod(X.shape[1:]))
            if reset:
                estimator.n_features_in_ = n_features
                if hasattr(estimator, "feature_names_in_"):
                    del estimator.feature_names_in_
            elif n_features != estimator.n_features_in_:
                raise ValueError(
                    f"X has {n_features} features, but {name} is expecting {estimator.n_features_in_} features as input"
                )
        else:
            X = validate_data(estimator, X, reset=reset, dtype=np.float32, ensure_all_finite=True)
    if y is None and reset and X is not None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None.")
    if y is not None:
        y = column_or_1d(y, warn=True)
        if reset:
            check_classification_targets(y)
            estimator.target_type_ = type_of_target(y)
        if X is not None:
            check_consistent_length(X, y)
    return X, y


def fit_architecture(values: dict[str, Any], input_shape: tuple[int, ...], model: str) -> dict[str, Any]:
    """``values`` with ``conv_layers`` / ``padding`` left None decided for ``input_shape``.

    The seed reports' network (2 blocks of 'valid' convolutions) is kept where it leaves
    feature maps of at least 2x2 (e.g. 28x28 MNIST); smaller images get 'same' padding,
    then fewer blocks: 8x8 digits get 2 'same' blocks (8 -> 4 -> 2).  Values set by the
    user are kept; when nothing fits, the defaults stay and the builder says why.
    """
    auto = [k for k in AUTO_PARAMS if values.get(k) is None]
    out = {**values, **{k: DEFAULTS[k] for k in auto}}
    if not auto or model != "cnn" or len(input_shape) != 3:
        return out
    most = int(out["conv_layers"])
    blocks = range(most, 0, -1) if "conv_layers" in auto else [most]
    paddings = ["valid", "same"] if "padding" in auto else [out["padding"]]
    for smallest in (2, 1):
        for n in blocks:
            for padding in paddings:
                candidate = {**out, "conv_layers": n, "padding": padding}
                try:
                    plan = conv_plan(candidate, input_shape)
                except InfeasibleConfig:
                    continue
                if not plan or min(plan[-1]["out_hw"]) >= smallest:
                    return candidate
    return out


def canonical_order(X: np.ndarray) -> np.ndarray:
    """The permutation that sorts the rows of ``X`` by their bytes (equal rows keep their order).

    Feeding a network its rows in this order makes its outputs independent of the order
    the rows came in: the batches it sees are the same.
    """
    if len(X) == 0:
        return np.arange(0)
    rows = np.ascontiguousarray(X).reshape(len(X), -1)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return np.argsort(keys, kind="stable")


def check_image_shape(image_shape: Any, owner: str) -> tuple[int, ...] | None:
    """``image_shape`` as ``(height, width, channels)``, or None.

    Raises
    ------
    ValueError
        Naming ``owner`` and the value, unless it is None or 2 or 3 positive integers.
    """
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


def infer_input_shape(
    sample_shape: tuple[int, ...], image_shape: Any, needs_images: bool, owner: str
) -> tuple[int, ...]:
    """The shape the network sees for one sample of ``sample_shape``.

    ``image_shape`` when given; an image's own shape (a channel axis added); for flat rows
    a plain feature vector when the network ``needs_images`` not, else a square
    single-channel image (with a warning saying so).

    Raises
    ------
    ValueError
        When ``image_shape`` does not hold the sample's values, or flat rows are not square.
    """
    wanted = check_image_shape(image_shape, owner)
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


class ImageShaper(TransformerMixin, BaseEstimator):
    """scikeras feature encoder: validated arrays -> the shape the network takes.

    ``fit`` decides ``input_shape_`` (:func:`infer_input_shape`); ``transform`` reshapes
    flat rows or adds the channel axis.
    """

    def __init__(self, image_shape: Any = None, needs_images: bool = True, owner: str = "KerasCNNClassifier") -> None:
        self.image_shape = image_shape
        self.needs_images = needs_images
        self.owner = owner

    def fit(self, X: np.ndarray, y: Any = None) -> ImageShaper:
        self.input_shape_ = infer_input_shape(tuple(X.shape[1:]), self.image_shape, self.needs_images, self.owner)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return _to_input_shape(np.asarray(X), self.input_shape_, self.owner)


class TargetEncoder(TransformerMixin, BaseEstimator):
    """scikeras target encoder: labels of any type <-> class indices or one-hot rows.

    Unlike scikeras' default it one-hot encodes binary targets too (the network always
    ends in a softmax over ``n_classes`` units) and returns 2-D probabilities.
    """

    def __init__(self, one_hot: bool = True, classes: Any = None) -> None:
        self.one_hot = one_hot
        self.classes = classes

    def fit(self, y: np.ndarray) -> TargetEncoder:
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
