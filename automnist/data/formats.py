"""File formats: IDX (MNIST) read/write, CIFAR-10 python pickle batches (numpy-only unpickler), npz archives."""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import zipfile
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


#: Deflate expands at most about 1032-fold; a header claiming more than this many times the
#: compressed size cannot be telling the truth (checked before anything is allocated).
_MAX_GZIP_RATIO = 1100


def _open_stream(path: Path) -> tuple[io.BufferedIOBase, int, bool]:
    """The file's content as a stream (gunzipped when gzip, by name or magic bytes), an upper
    bound of its length, and whether it is gzip."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    if path.suffix == ".gz" or raw[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=io.BytesIO(raw)), len(raw) * _MAX_GZIP_RATIO + 4096, True
    return io.BytesIO(raw), len(raw), False


def _read_exact(stream: io.BufferedIOBase, n: int, path: Path, gz: bool) -> bytes:
    """Up to ``n`` bytes; gzip errors become DataError."""
    try:
        return stream.read(n)
    except EOFError as exc:
        raise DataError(f"{path}: unreadable gzip: truncated ({exc})") from exc
    except (OSError, zlib.error) as exc:
        raise DataError(f"{path}: unreadable gzip: {exc}") from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not.

    The header's shape is checked against what the file can hold before the data is read,
    so a crafted header claiming a huge array is a :class:`DataError`, not an allocation.

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
    stream, most, gz = _open_stream(path)
    with stream:
        magic = _read_exact(stream, 4, path, gz)
        if len(magic) < 4:
            raise DataError(f"{path}: truncated IDX file: {len(magic)} bytes, the magic number alone needs 4")
        code, ndim = magic[2], magic[3]
        if magic[:2] != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
            raise DataError(
                f"{path}: bad IDX magic number 0x{magic.hex()}: expected 0x0000, a type code "
                f"(08 ubyte, 09 byte, 0b short, 0c int, 0d float, 0e double) and the number of "
                f"dimensions, e.g. 0x00000803 for images, 0x00000801 for labels"
            )
        header = 4 + 4 * ndim
        dims = _read_exact(stream, 4 * ndim, path, gz)
        if len(dims) < 4 * ndim:
            raise DataError(
                f"{path}: truncated IDX file: header of {ndim} dimensions needs {header} bytes, got {4 + len(dims)}"
            )
        shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4", count=ndim))
        dtype = _IDX_DTYPES[code]
        count = math.prod(shape)
        expected = count * dtype.itemsize
        if expected > most - header:  # more than the file can hold: count what is there, keep none of it
            found = 0
            while chunk := _read_exact(stream, 1 << 20, path, gz):
                found += len(chunk)
            raise DataError(f"{path}: truncated IDX file: shape {shape} needs {expected} data bytes, found {found}")
        data = _read_exact(stream, expected + 1, path, gz)
        got = len(data)
        if got < expected:
            raise DataError(f"{path}: truncated IDX file: shape {shape} needs {expected} data bytes, found {got}")
        if got > expected:
            extra = 1
            while chunk := _read_exact(stream, 1 << 20, path, gz):  # counted, not kept
                extra += len(chunk)
            raise DataError(f"{path}: corrupt IDX file: {extra} bytes after the data of shape {shape}")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape).astype(dtype.newbyteorder("="))


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


def _npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member, its header checked against the member's size before reading it."""
    fmt = np.lib.format
    claimed = min(info.file_size, info.compress_size * _MAX_GZIP_RATIO + 4096)
    with zf.open(info) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(fh, max_header_size=10_000)
        if dtype.hasobject:
            raise ValueError(f"{info.filename}: object arrays are not allowed (they would need pickle)")
        header = fh.tell() if fh.seekable() else 0
        need = math.prod(shape) * dtype.itemsize
        if need > max(claimed - header, 0):
            raise DataError(f"{path}: corrupt npz file: {info.filename} claims shape {shape} of {dtype} "
                            f"({need} bytes) but holds at most {max(claimed - header, 0)} bytes")
        data = fh.read(need + 1)
    if len(data) != need:
        raise DataError(f"{path}: corrupt npz file: {info.filename} has {len(data)} data bytes, "
                        f"shape {shape} of {dtype} needs {need}")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape)).reshape(shape, order=order)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with path.open("rb") as fh:
            if fh.read(6) == b"\x93NUMPY":
                raise DataError(f"{path}: not an npz archive (a single .npy array?)")
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                return {info.filename[:-4]: _npz_member(zf, info, path)
                        for info in zf.infolist() if info.filename.endswith(".npy")}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{path}: unreadable npz file: {type(exc).__name__}: {str(exc)[:200]}") from exc


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

