"""The registry of data sets: built-in loaders, :func:`register_dataset`, :func:`load_dataset`, availability."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from automnist.data.dataset import DIGIT_CLASSES, Dataset, DatasetInfo, DatasetLoader
from automnist.data.formats import _npz_arrays, _read_cifar_dir, _read_idx_pair
from automnist.data.locate import (
    _SPECS,
    _Found,
    _keras_download,
    _locate,
    _missing_note,
    _probe_idx_dir,
    _Spec,
    keras_cache_dir,
)
from automnist.data.transforms import _apply_image_size, _apply_subset, _build, apply_noise
from automnist.errors import DataError

__all__ = ["DATASETS", "available_datasets", "load_dataset", "register_dataset"]


# --------------------------------------------------------------------------- built-in loaders


def _read_found(spec_name: str, found: _Found, class_names: tuple[str, ...] | None, seed: int,
                test_split: float) -> Dataset:
    """Read the files ``found`` points at into a Dataset (splitting single-part sets)."""
    where = f"{found.path} ({found.where})"
    if found.layout == "cifar":
        x_train, y_train, x_test, y_test, names = _read_cifar_dir(found.path)
        if class_names is not None and len(names) != len(class_names):
            raise DataError(f"{found.path / 'batches.meta'}: {len(names)} label_names, expected {len(class_names)}")
        return _build(spec_name, x_train, y_train, x_test, y_test, class_names=names,
                      source=f"CIFAR batches in {where}", seed=seed, test_split=test_split)
    if found.layout == "npz":
        arrays, has_test = _npz_arrays(found.path)
        if has_test:
            return _build(spec_name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                          class_names=class_names, source=f"npz {where}", seed=seed, test_split=test_split)
        return _build(spec_name, arrays["x"], arrays["y"], None, None, class_names=class_names,
                      source=f"npz {where} (x, y only)", seed=seed, test_split=test_split)
    parts = {part: _read_idx_pair(*paths) for part, paths in found.files.items()}
    if found.layout == "idx":
        (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
        return _build(spec_name, x_train, y_train, x_test, y_test, class_names=class_names,
                      source=f"IDX files in {where}", seed=seed, test_split=test_split)
    [(part, (x, y))] = list(parts.items())
    which = "t10k test files only, used as the whole data set" if part == "test" else "train files only"
    return _build(spec_name, x, y, None, None, class_names=class_names,
                  source=f"IDX {which} in {where}", seed=seed, test_split=test_split)


def _make_keras_loader(spec: _Spec) -> DatasetLoader:
    def load(*, data_dir: str | None = None, seed: int = 0, test_split: float = 0.2) -> Dataset:
        found, looked = _locate(spec, data_dir)
        if found is not None:
            return _read_found(spec.name, found, spec.class_names, seed, test_split)
        (x_train, y_train), (x_test, y_test) = _keras_download(spec, looked)
        source = f"keras.datasets.{spec.keras_module}.load_data() (cache {keras_cache_dir()})"
        return _build(spec.name, x_train, y_train, x_test, y_test, class_names=spec.class_names,
                      source=source, seed=seed, test_split=test_split)

    load.__name__ = load.__qualname__ = f"load_{spec.name}"
    load.__doc__ = f"Load {spec.name} from the first place holding it (see the automnist.data docstring)."
    load._automnist_spec = spec  # type: ignore[attr-defined]  # lets available_datasets locate it
    return load


def _load_digits(*, data_dir: str | None = None, seed: int = 0, test_split: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 digits, pixel values 0..16 scaled to [0, 1], split stratified."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    return _build("digits", x, bunch.target, None, None, class_names=DIGIT_CLASSES,
                  source="scikit-learn load_digits (embedded)", seed=seed, test_split=test_split)


def _load_idx_dir(directory: str, *, seed: int, test_split: float) -> Dataset:
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise DataError(f"idx:{directory}: directory not found")
    found = _probe_idx_dir(path, "user directory")
    if found is None:
        raise DataError(
            f"idx:{directory}: no IDX files (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] "
            f"and/or t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz])"
        )
    return _read_found(f"idx:{directory}", found, None, seed, test_split)


def _load_npz_file(file: str, *, seed: int, test_split: float) -> Dataset:
    return _read_found(f"npz:{file}", _Found("npz", Path(file).expanduser(), "user file"), None, seed, test_split)


# --------------------------------------------------------------------------- registry

DATASETS: dict[str, DatasetLoader] = {"digits": _load_digits}
"""Registered data sets: name -> loader.  Add yours with :func:`register_dataset`."""
DATASETS.update({name: _make_keras_loader(spec) for name, spec in _SPECS.items()})

_PREFIXES: dict[str, Callable[..., Dataset]] = {"idx": _load_idx_dir, "npz": _load_npz_file}


def _canonical(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_dataset(name: str, loader: DatasetLoader, *, replace: bool = False) -> None:
    """Make ``load_dataset(name)`` call ``loader``.

    Parameters
    ----------
    name : str
        Registry name; case and ``-``/``_`` do not matter; must not contain ``:``.
    loader : callable
        Called as ``loader(data_dir=..., seed=..., test_split=...)``, returns a
        :class:`Dataset` (``subset`` and ``noise`` are applied afterwards).
    replace : bool, default False
        Allow replacing an existing registration.

    Raises
    ------
    ValueError
        When the name is empty, contains ``:`` or is taken and ``replace`` is False.
    TypeError
        When ``loader`` is not callable.
    """
    key = _canonical(name)
    if not key or ":" in key:
        raise ValueError(f"register_dataset: name must be non-empty without ':', got {name!r}")
    if key in DATASETS and not replace:
        raise ValueError(f"register_dataset: {key!r} is already registered; pass replace=True to replace it")
    if not callable(loader):
        raise TypeError(f"register_dataset: loader must be callable, got {loader!r}")
    DATASETS[key] = loader


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    subset: int | None = None,
    seed: int = 0,
    test_split: float = 0.2,
    noise: Any = None,
    image_size: tuple[int, int] | None = None,
) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        A registered name (``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, ...),
        ``idx:DIR`` or ``npz:FILE``.
    data_dir : str or path-like, optional
        Directory searched first (default: the ``AUTOMNIST_DATA`` environment variable).
    subset : int, optional
        Keep a stratified, seeded subset of this many training images, and at most
        ``max(subset // 4, 10 * n_classes)`` test images.  Larger than the training set:
        everything is kept.
    seed : int, default 0
        Seed of the train/test split (for sets without a test split) and of the subset.
    test_split : float, default 0.2
        Test fraction for data sets without their own test split.
    noise : NoiseSpec-like, optional
        Object with ``kind``, ``std``, ``amount``, ``on`` and ``seed`` (e.g.
        :class:`automnist.spec.NoiseSpec`); applied with
        :func:`~automnist.data.apply_noise` after the subset.
    image_size : (int, int), optional
        Resize every image to ``(height, width)`` (:func:`~automnist.data.resize_images`)
        after the subset and before the noise, e.g. 8x8 digits to 28x28 for an
        architecture made for MNIST.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unknown name (the message lists the known ones), missing or corrupt files (the
        message names the file and what is wrong), or a bad argument.
    """
    if not isinstance(test_split, (int, float)) or not 0.0 < test_split < 1.0:
        raise DataError(f"test_split must be a fraction in (0, 1), got {test_split!r}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 1):
        raise DataError(f"subset must be null or a positive integer, got {subset!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    if not isinstance(name, str):
        raise DataError(f"data set name must be a string, got {name!r}")
    prefix, sep, rest = name.partition(":")
    if sep and prefix.lower() in _PREFIXES:
        if not rest:
            raise DataError(f"{name!r}: give a path after '{prefix}:', e.g. '{prefix}:data/my_set'")
        ds = _PREFIXES[prefix.lower()](rest, seed=seed, test_split=float(test_split))
    else:
        key = _canonical(name)
        if key not in DATASETS:
            raise DataError(
                f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}, "
                f"or idx:DIR (IDX files) or npz:FILE (x_train, y_train, x_test, y_test)"
            )
        ds = DATASETS[key](data_dir=None if data_dir is None else str(data_dir), seed=seed,
                           test_split=float(test_split))
    if subset is not None:
        ds = _apply_subset(ds, int(subset), seed)
    if image_size is not None:
        ds = _apply_image_size(ds, image_size)
    if noise is not None:
        ds = apply_noise(ds, noise)
    return ds


def available_datasets(data_dir: str | os.PathLike[str] | None = None) -> list[DatasetInfo]:
    """Which registered data sets can be loaded, and from where, without loading them.

    Only checks that files exist; never downloads or reads image data.

    Parameters
    ----------
    data_dir : str or path-like, optional
        Searched first, as in :func:`load_dataset` (default: ``AUTOMNIST_DATA``).

    Returns
    -------
    list of DatasetInfo
        One per registered name, in registration order.
    """
    infos = []
    for name, loader in DATASETS.items():
        spec: _Spec | None = getattr(loader, "_automnist_spec", None)
        if loader is _load_digits:
            infos.append(DatasetInfo(name, True, "scikit-learn (embedded)", "1,797 8x8 images, split at load"))
        elif spec is not None:
            try:
                found, _ = _locate(spec, data_dir)
            except DataError as exc:
                infos.append(DatasetInfo(name, False, "", f"incomplete: {exc}"))
                continue
            if found is None:
                infos.append(DatasetInfo(name, False, "", _missing_note(spec)))
            else:
                infos.append(DatasetInfo(name, True, str(found.path), f"{found.note} ({found.where})"))
        else:
            infos.append(DatasetInfo(name, True, f"registered loader {getattr(loader, '__qualname__', loader)!s}",
                                     "custom loader: not checked until loaded"))
    return infos
