"""File formats: IDX (MNIST) read/write, CIFAR-10 python pickle batches (numpy-only unpickler), npz archives."""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from automnist.data.dataset import CIFAR10_CLASSES
from automnist.errors import DataError

__all__ = ["read_idx", "write_idx"]

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

