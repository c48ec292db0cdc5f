"""Arrays to a Dataset and what is done to one: label indexing, stratified split, subset, resize, noise."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from automnist.data.dataset import Dataset
from automnist.errors import DataError

__all__ = [
    "NOISE_KINDS",
    "add_noise",
    "apply_noise",
    "index_labels",
    "resize_images",
    "stratified_split",
]

NOISE_KINDS = ("gaussian", "salt_pepper")


# --------------------------------------------------------------------------- arrays -> Dataset


def _as_images(x: np.ndarray, where: str) -> np.ndarray:
    """float32 ``(n, h, w, c)`` in [0, 1] from uint8 0..255 or float [0, 1] / [0, 255]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise DataError(
            f"{where}: images must have shape (n, height, width) or (n, height, width, channels), got {x.shape}"
        )
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: images must be integers 0..255 or floats, got dtype {x.dtype}")
    if x.size == 0:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise DataError(f"{where}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if np.issubdtype(x.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return x.astype(np.float32)
    if lo < 0.0 or hi > 255.0:
        raise DataError(f"{where}: pixel values must be in [0, 1] or [0, 255], got [{lo:g}, {hi:g}]")
    return np.divide(x, 255.0, dtype=np.float32)


def _known_labels(y: np.ndarray, n_classes: int, where: str) -> np.ndarray:
    y = np.asarray(y).ravel()
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers 0..{n_classes - 1}, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"{where}: labels must be in 0..{n_classes - 1}, got [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def index_labels(*parts: np.ndarray) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Map any int / str labels to class indices ``0..k-1``, over all parts together.

    Not one-hot rows (that is :func:`automnist.runner.encode_labels`): index ``i`` stands
    for the ``i``-th smallest label seen in any part.

    Parameters
    ----------
    *parts : numpy.ndarray
        Label arrays (e.g. train and test); floats holding whole numbers count as integers.

    Returns
    -------
    indices : list of numpy.ndarray
        int64 ``(n,)`` per part, in the order given.
    class_names : tuple of str
        ``class_names[i]`` is ``str`` of the original label of index ``i``.
    """
    flat = [np.asarray(p).ravel() for p in parts]
    for i, p in enumerate(flat):
        if np.issubdtype(p.dtype, np.floating) and p.size and np.array_equal(p, np.round(p)):
            flat[i] = p.astype(np.int64)
    classes = np.unique(np.concatenate(flat))
    return [np.searchsorted(classes, p).astype(np.int64) for p in flat], tuple(str(c) for c in classes)


def stratified_split(
    y: np.ndarray, seed: int, *, train_size: int | None = None, test_size: float | None = None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Seeded (first, second) index arrays, stratified by ``y`` when every class allows it.

    The one home of "a stratified split with a fallback": when scikit-learn cannot
    stratify (a class with a single image, or fewer images than classes on one side) the
    split is a plain seeded random one.

    Parameters
    ----------
    y : numpy.ndarray
        ``(n,)`` labels to stratify by.
    seed : int
        ``random_state`` of ``sklearn.model_selection.train_test_split``.
    train_size : int, optional
        Size (int) or fraction of the first part, as in ``train_test_split``.
    test_size : float, optional
        Fraction (or size) of the second part, as in ``train_test_split``.

    Returns
    -------
    first, second : numpy.ndarray
        Sorted indices into ``y`` of the two parts.
    stratified : bool
        False when the random fallback was used.
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        first, second = train_test_split(
            index, train_size=train_size, test_size=test_size, stratify=y, random_state=seed
        )
        stratified = True
    except ValueError:  # a class with a single image, or fewer images than classes on one side
        first, second = train_test_split(index, train_size=train_size, test_size=test_size, random_state=seed)
        stratified = False
    return np.sort(first), np.sort(second), stratified


def _build(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    class_names: tuple[str, ...] | None,
    source: str,
    seed: int,
    test_split: float,
) -> Dataset:
    """Normalise images and labels; split when there is no test part (x_test is None)."""
    xs = [_as_images(x_train, source)] + ([] if x_test is None else [_as_images(x_test, source)])
    ys = [y_train] + ([] if y_test is None else [y_test])
    _check_content(xs, ys, source)
    if class_names is None:
        labels, class_names = index_labels(*ys)
    else:
        labels = [_known_labels(y, len(class_names), source) for y in ys]
    for x, y in zip(xs, labels, strict=True):
        if len(x) != len(y):
            raise DataError(f"{source}: {len(x)} images but {len(y)} labels")
    if x_test is None:
        if len(xs[0]) < 2:
            raise DataError(f"{source}: need at least 2 images to split into train and test, got {len(xs[0])}")
        train, test, stratified = stratified_split(labels[0], seed, test_size=test_split)
        how = "stratified" if stratified else "random (too few images per class to stratify)"
        source += (
            f"; {len(labels[0])} images split {how} into {len(train)} train / {len(test)} test "
            f"(test_split={test_split}, seed={seed})"
        )
        xs = [xs[0][train], xs[0][test]]
        labels = [labels[0][train], labels[0][test]]
    return Dataset(name, xs[0], labels[0], xs[1], labels[1], tuple(class_names), source)


def _check_content(xs: list[np.ndarray], ys: list[np.ndarray], source: str) -> None:
    """Images and labels a classifier can learn from: some images, each at least 1x1, finite
    labels of at least 2 classes."""
    for x, part in zip(xs, ("training", "test"), strict=False):
        if len(x) == 0:
            raise DataError(f"{source}: no {part} images (0 in the file)")
        if min(x.shape[1:]) == 0:
            raise DataError(f"{source}: images must be at least 1x1 with 1 channel, got shape {x.shape[1:]}")
    for y in ys:
        y = np.asarray(y)
        if y.dtype.kind in "fc" and not np.isfinite(y).all():
            raise DataError(f"{source}: labels contain NaN or infinite values")
        if y.dtype.kind not in "biufUS":
            raise DataError(f"{source}: labels must be integers or text, got dtype {y.dtype}")
    if len(np.unique(np.asarray(ys[0]).ravel())) < 2:
        raise DataError(f"{source}: the training labels hold a single class; a classifier needs at least 2")


def _apply_subset(ds: Dataset, subset: int, seed: int) -> Dataset:
    """Stratified seeded subset of the training set; test cut to max(subset // 4, 10 k)."""
    if subset < ds.n_classes:
        raise DataError(
            f"{ds.name}: subset must be at least the number of classes ({ds.n_classes}), got {subset}"
        )
    notes = []
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if subset < len(y_train):
        keep, _, stratified = stratified_split(y_train, seed, train_size=subset)
        x_train, y_train = x_train[keep], y_train[keep]
        how = "stratified" if stratified else "random"
        notes.append(f"{how} subset of {subset} of {len(ds.y_train)} training images")
    else:
        notes.append(f"subset={subset} >= {len(y_train)} training images: all used")
    cap = max(subset // 4, 10 * ds.n_classes)
    if cap < len(y_test):
        keep, _, stratified = stratified_split(y_test, seed, train_size=cap)
        x_test, y_test = x_test[keep], y_test[keep]
        notes.append(f"{'stratified' if stratified else 'random'} {cap} of {len(ds.y_test)} test images")
    source = f"{ds.source}; {', '.join(notes)} (seed={seed})"
    return Dataset(ds.name, x_train, y_train, x_test, y_test, ds.class_names, source)


# --------------------------------------------------------------------------- image size


def resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float images ``(n, h, w, c)`` in [0, 1] to ``(n, height, width, c)``.

    Bilinear interpolation (Pillow, per channel; antialiased when shrinking), values
    clipped to [0, 1].  Images already of that size are returned unchanged.

    Raises
    ------
    DataError
        When ``x`` is not a 4-d image array or ``size`` is not two positive integers.
    """
    from PIL import Image

    if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, (int, np.integer)) and v > 0
                                                                       for v in size)):
        raise DataError(f"image_size must be (height, width) with positive integers, got {size!r}")
    if x.ndim != 4:
        raise DataError(f"resize_images: images must be (n, height, width, channels), got shape {x.shape}")
    height, width = int(size[0]), int(size[1])
    if x.shape[1:3] == (height, width):
        return x
    out = np.empty((len(x), height, width, x.shape[3]), dtype=np.float32)
    for i, image in enumerate(np.asarray(x, dtype=np.float32)):
        for c in range(image.shape[2]):
            plane = Image.fromarray(np.ascontiguousarray(image[:, :, c]))
            out[i, :, :, c] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return np.clip(out, 0.0, 1.0, out=out)


def _apply_image_size(ds: Dataset, image_size: tuple[int, int]) -> Dataset:
    """``ds`` with train and test images resized to ``image_size``, noted in ``source``."""
    if tuple(ds.x_train.shape[1:3]) == tuple(image_size):
        return ds
    h, w = ds.x_train.shape[1:3]
    return dataclasses.replace(ds, x_train=resize_images(ds.x_train, image_size),
                               x_test=resize_images(ds.x_test, image_size),
                               source=f"{ds.source}; resized from {h}x{w} to {image_size[0]}x{image_size[1]}")


# --------------------------------------------------------------------------- noise


def add_noise(
    x: np.ndarray, kind: str = "gaussian", std: float = 0.5, amount: float = 0.1, seed: int = 0
) -> np.ndarray:
    """Return a noisy float32 copy of images ``x`` (values in [0, 1]).

    Parameters
    ----------
    x : numpy.ndarray
        Images with values in [0, 1].
    kind : {"gaussian", "salt_pepper"}
        ``gaussian`` adds N(0, ``std``) to every value then clips to [0, 1];
        ``salt_pepper`` sets ``round(amount * x.size)`` randomly chosen values to 0 or 1
        (each with probability 1/2).
    std : float, default 0.5
        Standard deviation of the gaussian noise (>= 0).
    amount : float, default 0.1
        Fraction of values replaced by salt-and-pepper noise, in [0, 1].
    seed : int, default 0
        Seed of the noise (``numpy.random.default_rng``).

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.

    Raises
    ------
    ValueError
        Unknown ``kind``, negative ``std`` or ``amount`` outside [0, 1].
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"add_noise: kind must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")
    rng = np.random.default_rng(seed)
    out = np.array(x, dtype=np.float32, copy=True)
    if kind == "gaussian":
        if not std >= 0:
            raise ValueError(f"add_noise: std must be >= 0, got {std!r}")
        out += rng.normal(0.0, std, size=out.shape).astype(np.float32)
        return np.clip(out, 0.0, 1.0, out=out)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"add_noise: amount must be in [0, 1], got {amount!r}")
    flat = out.reshape(-1)
    chosen = rng.choice(flat.size, size=round(amount * flat.size), replace=False)
    flat[chosen] = rng.integers(0, 2, size=chosen.size).astype(np.float32)
    return out


def apply_noise(ds: Dataset, noise: Any) -> Dataset:
    """Add noise to the chosen parts of ``ds``: seed ``s`` on train, ``s + 1`` on test.

    The one home of that rule: train and test never share a noise pattern, and the same
    spec always gives the same noisy images.

    Parameters
    ----------
    ds : Dataset
        The clean data set.
    noise : NoiseSpec-like
        Object with ``kind``, ``std``, ``amount``, ``on`` (parts among ``"train"``,
        ``"test"``) and ``seed`` (e.g. :class:`automnist.spec.NoiseSpec`); missing
        attributes default to gaussian, 0.5, 0.1, both parts and 0.

    Returns
    -------
    Dataset
        Noisy images (:func:`add_noise`) in the parts named by ``on``, the others
        unchanged; the noise is noted in ``source``.
    """
    kind = getattr(noise, "kind", "gaussian")
    std, amount = float(getattr(noise, "std", 0.5)), float(getattr(noise, "amount", 0.1))
    on = tuple(getattr(noise, "on", ("train", "test")))
    seed = int(getattr(noise, "seed", 0))
    x_train, x_test = ds.x_train, ds.x_test
    if "train" in on:
        x_train = add_noise(x_train, kind=kind, std=std, amount=amount, seed=seed)
    if "test" in on:
        x_test = add_noise(x_test, kind=kind, std=std, amount=amount, seed=seed + 1)
    level = f"std={std}" if kind == "gaussian" else f"amount={amount}"
    source = f"{ds.source}; {kind} noise {level} on {', '.join(on)} (seed={seed})"
    return Dataset(ds.name, x_train, ds.y_train, x_test, ds.y_test, ds.class_names, source)
