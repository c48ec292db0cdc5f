"""Data sets: a registry of loaders, readers for the IDX / CIFAR / npz formats, noise.

Every loader returns a :class:`Dataset`: float32 images ``(n, h, w, c)`` in ``[0, 1]``,
int64 labels ``0..k-1``, the class names and a human-readable ``source`` saying where the
images came from and how they were split.

Built-in data sets (:data:`DATASETS`):

``digits``
    scikit-learn's ``load_digits`` (1,797 8x8 images, shipped with scikit-learn), split
    stratified into train/test with ``test_split`` and ``seed``.
``mnist``, ``fashion_mnist``, ``cifar10``
    Looked for, in this order, and the first place holding the files wins:

    1. ``data_dir`` (else the ``AUTOMNIST_DATA`` environment variable): ``<dir>/<name>/``
       (``fashion-mnist`` and ``fashion_mnist`` spellings both work) or ``<dir>`` itself;
    2. ``/usr/share/datasets/<name>/`` (:data:`SYSTEM_DATA_DIRS`; the Debian package
       ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist/``);
    3. the ``keras.datasets`` cache ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``),
       read directly in the layout keras writes; when nothing is cached, the real
       ``keras.datasets.<name>.load_data()`` is called so users with internet get the
       download.  When that fails too, a :class:`~automnist.errors.DataError` lists every
       place looked.

    MNIST-style directories hold IDX files (``train-images-idx3-ubyte[.gz]``,
    ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
    ``t10k-labels-idx1-ubyte[.gz]``).  A directory holding only the ``t10k`` files is used
    as the whole data set and split stratified with ``test_split`` and ``seed``.  CIFAR-10
    directories hold the python pickle batches ``data_batch_1..5``, ``test_batch`` and
    ``batches.meta``.

Users' own files: ``idx:DIR`` (a directory of IDX files) and ``npz:FILE`` (keys
``x_train, y_train, x_test, y_test`` like keras' ``mnist.npz``, or ``x, y`` to be split).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from automnist.errors import DataError

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "DIGIT_CLASSES",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "SYSTEM_DATA_DIRS",
    "Dataset",
    "DatasetInfo",
    "DatasetLoader",
    "add_noise",
    "available_datasets",
    "keras_cache_dir",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "resize_images",
    "write_idx",
]

ENV_VAR = "AUTOMNIST_DATA"
"""Environment variable naming a directory searched when ``data_dir`` is not given."""

SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
"""System-wide data directories holding ``<name>/`` subdirectories (Debian ``dataset-*``)."""

DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

NOISE_KINDS = ("gaussian", "salt_pepper")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Dataset:
    """A train/test pair of image arrays ready for a Keras model.

    Attributes
    ----------
    name : str
        The name it was loaded by (``"mnist"``, ``"npz:my.npz"``, ...).
    x_train, x_test : numpy.ndarray
        float32 ``(n, height, width, channels)`` with values in ``[0, 1]``.
    y_train, y_test : numpy.ndarray
        int64 ``(n,)`` class indices ``0..k-1``.
    class_names : tuple of str
        ``class_names[i]`` names class ``i``.
    source : str
        Where the images were found and how they were split or subset.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
                raise DataError(
                    f"{self.name}: x_{part} must be (n, h, w, c) and y_{part} (n,) with the same n, "
                    f"got {x.shape} and {y.shape}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"{self.name}: train and test images differ in shape: "
                f"{self.x_train.shape[1:]} vs {self.x_test.shape[1:]}"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(height, width, channels)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


@dataclass(frozen=True)
class DatasetInfo:
    """Whether a registered data set can be loaded here, without loading it."""

    name: str
    available: bool
    location: str
    note: str = ""


class DatasetLoader(Protocol):
    """What :func:`register_dataset` accepts: keyword arguments in, a full Dataset out.

    ``subset`` and ``noise`` are applied by :func:`load_dataset` afterwards; ``test_split``
    and ``seed`` are for data sets without their own test split.
    """

    def __call__(self, *, data_dir: str | None, seed: int, test_split: float) -> Dataset: ...


# --------------------------------------------------------------------------- IDX format

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); data is big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[str, int] = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by name or by magic bytes)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    if path.suffix == ".gz" or raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except EOFError as exc:
            raise DataError(f"{path}: unreadable gzip: truncated ({exc})") from exc
        except (OSError, zlib.error) as exc:
            raise DataError(f"{path}: unreadable gzip: {exc}") from exc
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        The file; gzip is detected from the ``.gz`` suffix or the gzip magic bytes.

    Returns
    -------
    numpy.ndarray
        The array with its stored shape, in native byte order (``uint8`` for the
        ``ubyte`` files).

    Raises
    ------
    DataError
        Missing or unreadable file, bad magic number, truncated data or trailing bytes;
        the message names the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file: {len(data)} bytes, the magic number alone needs 4")
    code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()}: expected 0x0000, a type code "
            f"(08 ubyte, 09 byte, 0b short, 0c int, 0d float, 0e double) and the number of "
            f"dimensions, e.g. 0x00000803 for images, 0x00000801 for labels"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file: header of {ndim} dimensions needs {header} bytes, got {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    count = int(np.prod(shape, dtype=np.int64))
    expected, got = count * dtype.itemsize, len(data) - header
    if got < expected:
        raise DataError(f"{path}: truncated IDX file: shape {shape} needs {expected} data bytes, found {got}")
    if got > expected:
        raise DataError(f"{path}: corrupt IDX file: {got - expected} bytes after the data of shape {shape}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or path-like
        Destination file (its directory must exist).
    array : numpy.ndarray
        Of dtype uint8, int8, int16, int32, float32 or float64, with 1 to 255 dimensions.

    Raises
    ------
    ValueError
        When the dtype or the number of dimensions cannot be stored in IDX.
    """
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str[1:]
    if key not in _IDX_CODES:
        raise ValueError(
            f"write_idx: array: dtype must be one of uint8, int8, int16, int32, float32, float64, got {arr.dtype}"
        )
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: array: must have 1 to 255 dimensions, got {arr.ndim}")
    code = _IDX_CODES[key]
    payload = (
        bytes([0, 0, code, arr.ndim])
        + np.asarray(arr.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(arr, dtype=_IDX_DTYPES[code]).tobytes()
    )
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_spellings(stem: str) -> list[str]:
    # "train-images-idx3-ubyte" and the "train-images.idx3-ubyte" spelling of some mirrors.
    dotted = stem.replace("-idx", ".idx")
    return [f"{stem}.gz", stem, f"{dotted}.gz", dotted]


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in _idx_spellings(stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _idx_pairs(directory: Path) -> dict[str, tuple[Path, Path]]:
    """The complete (images, labels) IDX pairs in ``directory``; DataError for half pairs."""
    pairs: dict[str, tuple[Path, Path]] = {}
    for part, (img_stem, lbl_stem) in _IDX_STEMS.items():
        images, labels = _find_file(directory, img_stem), _find_file(directory, lbl_stem)
        if images and labels:
            pairs[part] = (images, labels)
        elif images or labels:
            present, missing = (images, lbl_stem) if images else (labels, img_stem)
            raise DataError(f"{directory}/{missing}[.gz]: file not found (needed next to {present.name})")
    return pairs


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(f"{images_path}: IDX images must have 3 dimensions (n, h, w), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: IDX labels must have 1 dimension (n,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    return images, labels


# --------------------------------------------------------------------------- CIFAR pickles


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only (like keras' RestrictedUnpickler).

    keras' own class is not imported because that would import TensorFlow.
    """

    _ALLOWED = frozenset({
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    })  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        # The CIFAR files were pickled by numpy 1 under the numpy.core spelling.
        module = module.replace("numpy.core.", "numpy._core.")
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _read_pickle_dict(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # a corrupt pickle can fail in almost any way
        raise DataError(f"{path}: bad pickle: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: bad pickle: expected a dict, got {type(obj).__name__}")
    return {k.decode("utf-8") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_pickle_dict(path)
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        raise DataError(f"{path}: not a CIFAR-10 batch: no {' or '.join(missing)!s} entry (keys: {sorted(batch)})")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"]).ravel()
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: CIFAR-10 data must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _cifar_batches(directory: Path) -> list[Path]:
    """``data_batch_1..N`` in order; DataError when one in the middle is missing."""
    found = {p.name for p in directory.glob("data_batch_*")}
    batches = []
    while f"data_batch_{len(batches) + 1}" in found:
        batches.append(directory / f"data_batch_{len(batches) + 1}")
    if len(batches) != len(found):
        raise DataError(
            f"{directory / f'data_batch_{len(batches) + 1}'}: file not found "
            f"(found {', '.join(sorted(found))})"
        )
    return batches


def _read_cifar_dir(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    train = [_read_cifar_batch(p) for p in _cifar_batches(directory)]
    x_test, y_test = _read_cifar_batch(directory / "test_batch")
    names = CIFAR10_CLASSES
    meta_path = directory / "batches.meta"
    if meta_path.is_file():
        meta = _read_pickle_dict(meta_path)
        if "label_names" not in meta:
            raise DataError(f"{meta_path}: no label_names entry (keys: {sorted(meta)})")
        names = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta["label_names"])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test, names


# --------------------------------------------------------------------------- npz files


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    import zipfile

    try:
        with path.open("rb") as fh:  # our handle: np.load leaks its own on a bad zip
            loaded = np.load(fh, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an npz archive (a single .npy array?)")
            return {k: loaded[k] for k in loaded.files}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error) as exc:
        raise DataError(f"{path}: unreadable npz file: {type(exc).__name__}: {exc}") from exc


def _npz_arrays(path: Path) -> tuple[dict[str, np.ndarray], bool]:
    """The npz's arrays and whether it has its own test split."""
    arrays = _read_npz(path)
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return arrays, True
    if {"x", "y"} <= arrays.keys():
        return arrays, False
    raise DataError(
        f"{path}: npz needs keys x_train, y_train, x_test, y_test (or x, y to be split), "
        f"found {', '.join(sorted(arrays)) or 'none'}"
    )


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


def _encode_labels(*parts: np.ndarray) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Encode any int / str labels to 0..k-1 over all parts; class names from the originals."""
    flat = [np.asarray(p).ravel() for p in parts]
    for i, p in enumerate(flat):
        if np.issubdtype(p.dtype, np.floating) and p.size and np.array_equal(p, np.round(p)):
            flat[i] = p.astype(np.int64)
    classes = np.unique(np.concatenate(flat))
    return [np.searchsorted(classes, p).astype(np.int64) for p in flat], tuple(str(c) for c in classes)


def stratified_split(
    y: np.ndarray, seed: int, *, train_size: int | None = None, test_size: float | None = None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Seeded (train, rest) index arrays, stratified by ``y`` when every class allows it."""
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
    if class_names is None:
        labels, class_names = _encode_labels(*ys)
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


def apply_noise(ds: Dataset, noise: Any) -> Dataset:
    """Apply a NoiseSpec-like object (kind, std, amount, on, seed) to the chosen parts."""
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


# --------------------------------------------------------------------------- locating files


@dataclass(frozen=True)
class _Spec:
    """How a keras-backed data set is stored and where keras caches it."""

    name: str
    kind: str  # "idx" or "cifar"
    aliases: tuple[str, ...]
    class_names: tuple[str, ...]
    keras_module: str
    keras_cache: tuple[str, ...]  # paths relative to <keras home>/datasets, in preference order


_SPECS: dict[str, _Spec] = {
    "mnist": _Spec("mnist", "idx", ("mnist",), DIGIT_CLASSES, "mnist", ("mnist.npz",)),
    "fashion_mnist": _Spec(
        "fashion_mnist", "idx", ("fashion-mnist", "fashion_mnist"), FASHION_MNIST_CLASSES,
        "fashion_mnist", ("fashion-mnist",),
    ),
    "cifar10": _Spec(
        "cifar10", "cifar", ("cifar10", "cifar-10", "cifar-10-batches-py", "cifar-10-batches-py-target"),
        CIFAR10_CLASSES, "cifar10",
        # keras 3 extracts into cifar-10-batches-py-target/, keras 2 did not.
        ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class _Found:
    """A place holding a data set's files, before reading them."""

    layout: str  # idx | idx-test-only | idx-train-only | npz | cifar
    path: Path
    where: str  # "data_dir", "AUTOMNIST_DATA", "system data dir", "keras cache"
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict)

    @property
    def note(self) -> str:
        return {
            "idx": "IDX train + test",
            "idx-test-only": "IDX t10k test files only: split into train/test when loaded",
            "idx-train-only": "IDX train files only: split into train/test when loaded",
            "npz": "npz arrays",
            "cifar": "CIFAR python pickle batches",
        }[self.layout]


def _probe_idx_dir(directory: Path, where: str) -> _Found | None:
    if not directory.is_dir():
        return None
    pairs = _idx_pairs(directory)
    if not pairs:
        return None
    layout = "idx" if len(pairs) == 2 else ("idx-test-only" if "test" in pairs else "idx-train-only")
    return _Found(layout, directory, where, pairs)


def _probe_cifar_dir(directory: Path, where: str) -> _Found | None:
    for d in (directory, directory / "cifar-10-batches-py"):
        if (d / "data_batch_1").is_file() or (d / "test_batch").is_file():
            return _Found("cifar", d, where)
    return None


def _probe(spec: _Spec, directory: Path, where: str) -> _Found | None:
    """The data set's files in ``directory`` itself (IDX, ``<alias>.npz`` or CIFAR batches)."""
    if spec.kind == "cifar":
        return _probe_cifar_dir(directory, where)
    found = _probe_idx_dir(directory, where)
    if found is None:
        for alias in spec.aliases:
            if (directory / f"{alias}.npz").is_file():
                return _Found("npz", directory / f"{alias}.npz", where)
    return found


def keras_cache_dir() -> Path:
    """The directory ``keras.utils.get_file`` caches data sets in, resolved as keras does.

    ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``; ``/tmp/.keras/datasets`` when
    that home is not writable.

    Returns
    -------
    pathlib.Path
        The ``datasets`` directory (it may not exist yet).
    """
    home = os.environ.get("KERAS_HOME")
    if home:
        base = Path(home).expanduser()
    else:
        user = Path("~").expanduser()
        base = (user if os.access(user, os.W_OK) else Path("/tmp")) / ".keras"
    if not os.access(base, os.W_OK):
        base = Path("/tmp") / ".keras"
    return base / "datasets"


def _local_root(data_dir: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The user's data directory and what named it ("data_dir" or the env variable)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), ENV_VAR
    return None, f"data_dir (not given) / {ENV_VAR} (not set)"


def _locate(spec: _Spec, data_dir: str | os.PathLike[str] | None) -> tuple[_Found | None, list[str]]:
    """First place holding ``spec``'s files, and a description of every place looked."""
    looked: list[str] = []
    root, label = _local_root(data_dir)
    if root is None:
        looked.append(label)
    else:
        for d in [root / alias for alias in spec.aliases] + [root]:
            found = _probe(spec, d, label)
            if found:
                return found, looked
        subdirs = f"{root}/{{{','.join(spec.aliases)}}}"
        what = f"no {spec.name} files in it or in {subdirs}" if root.is_dir() else "no such directory"
        looked.append(f"{label} {root}: {what}")
    for base in SYSTEM_DATA_DIRS:
        for alias in spec.aliases:
            found = _probe(spec, base / alias, "system data dir")
            if found:
                return found, looked
        looked.append(f"{base}/{{{','.join(spec.aliases)}}}: no {spec.name} files")
    cache = keras_cache_dir()
    for rel in spec.keras_cache:
        path = cache / rel
        if path.suffix == ".npz":
            found = _Found("npz", path, "keras cache") if path.is_file() else None
        else:
            found = _probe(spec, path, "keras cache")
        if found:
            return found, looked
        looked.append(f"keras cache {path}: not there")
    return None, looked


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


_Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _keras_download(spec: _Spec, looked: list[str]) -> _Arrays:
    """Call the real ``keras.datasets.<x>.load_data()``; DataError listing ``looked`` on failure."""
    call = f"keras.datasets.{spec.keras_module}.load_data()"
    try:
        import importlib

        module = importlib.import_module(f"keras.datasets.{spec.keras_module}")
        return module.load_data()
    except Exception as exc:  # keras raises a bare Exception for URL failures
        places = "\n".join(f"  - {p}" for p in [*looked, f"{call}: download failed: {type(exc).__name__}: {exc}"])
        files = (
            "data_batch_1..5, test_batch, batches.meta"
            if spec.kind == "cifar"
            else "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz"
        )
        raise DataError(
            f"data set {spec.name!r} not found; looked in:\n{places}\n"
            f"Put its files ({files}) in a directory and pass data_dir (--data-dir) or set {ENV_VAR}."
        ) from exc


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
    load.__doc__ = f"Load {spec.name} from the first place holding it (see the module docstring)."
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
        :class:`automnist.spec.NoiseSpec`); applied with :func:`add_noise` after the subset.
    image_size : (int, int), optional
        Resize every image to ``(height, width)`` (:func:`resize_images`) after the subset
        and before the noise, e.g. 8x8 digits to 28x28 for an architecture made for MNIST.

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
    if image_size is not None and tuple(ds.x_train.shape[1:3]) != tuple(image_size):
        h, w = ds.x_train.shape[1:3]
        ds = dataclasses.replace(ds, x_train=resize_images(ds.x_train, image_size),
                                 x_test=resize_images(ds.x_test, image_size),
                                 source=f"{ds.source}; resized from {h}x{w} to {image_size[0]}x{image_size[1]}")
    if noise is not None:
        ds = apply_noise(ds, noise)
    return ds


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
                infos.append(DatasetInfo(
                    name, False, "",
                    f"not in data_dir/{ENV_VAR}, {', '.join(map(str, SYSTEM_DATA_DIRS))} or the keras cache "
                    f"{keras_cache_dir()}; keras.datasets.{spec.keras_module}.load_data() downloads it "
                    f"on first use (needs internet)",
                ))
            else:
                infos.append(DatasetInfo(name, True, str(found.path), f"{found.note} ({found.where})"))
        else:
            infos.append(DatasetInfo(name, True, f"registered loader {getattr(loader, '__qualname__', loader)!s}",
                                     "custom loader: not checked until loaded"))
    return infos


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
