"""Tests for automnist.data.formats: IDX round trips and headers, corrupt IDX / CIFAR / npz files.

Also home of the writers the other data tests use to build MNIST / CIFAR directories.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from automnist.data import CIFAR10_CLASSES, load_dataset, read_idx, write_idx
from automnist.errors import DataError

REAL_T10K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-t10k"
# Class counts of the real MNIST test set (t10k-labels-idx1-ubyte).
MNIST_T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --------------------------------------------------------------------------- writers


def images(n: int, seed: int, shape: tuple[int, ...] = (28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def labels(n: int, offset: int = 0) -> np.ndarray:
    return ((np.arange(n) + offset) % 10).astype(np.uint8)


def write_mnist_dir(
    directory: Path, n_train: int = 60, n_test: int = 20, *, gz: bool = True, train: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A directory of IDX files in the MNIST layout; returns {"train"/"t10k": (x, y)}."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    parts = {"t10k": (images(n_test, 1), labels(n_test, 3))}
    if train:
        parts["train"] = (images(n_train, 0), labels(n_train))
    for prefix, (x, y) in parts.items():
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", x)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", y)
    return parts


def write_cifar_dir(directory: Path, n_per_batch: int = 4, n_test: int = 6,
                    flat: bool = False) -> dict[str, tuple[np.ndarray, list]]:
    """CIFAR-10 python batches in the format of cifar-10-python.tar.gz (dicts with bytes keys).

    Protocol 4, not the originals' 2: Python 3 pickles bytes under protocol 2 through
    ``_codecs.encode``, which keras' restricted unpickler refuses.  ``flat``: every image
    is one grey level (its index mod 256), so full-size batches compress to almost nothing.
    """
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        n = n_test if name == "test_batch" else n_per_batch
        if flat:
            pixels = np.repeat(((np.arange(n) + 37 * i) % 256).astype(np.uint8)[:, None], 3072, axis=1)
        else:
            pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        targets = [int(v) for v in (np.arange(n) + 2 * i) % 10]
        batch = {
            b"batch_label": f"{name} of 6".encode(),
            b"labels": targets,
            b"data": pixels,
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)],
        }
        (directory / name).write_bytes(pickle.dumps(batch, protocol=4))
        batches[name] = (pixels, targets)
    meta = {b"num_cases_per_batch": n_per_batch, b"label_names": [c.encode() for c in CIFAR10_CLASSES],
            b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    return batches


def as_float(x: np.ndarray) -> np.ndarray:
    return (x[..., None] / np.float32(255)).astype(np.float32)



# --------------------------------------------------------------------------- IDX format


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-5, 0, 70000], dtype=np.int32),
        np.array([[0.5, -1.25], [3.0, 1e-3]], dtype=np.float32),
        np.array([1.0, 2.5], dtype=np.float64),
    ],
)
def test_idx_round_trip(tmp_path: Path, suffix: str, array: np.ndarray) -> None:
    path = tmp_path / f"a-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    raw = path.read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")


def test_idx_header_bytes_are_the_mnist_format(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.zeros((3, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "y", np.array([7, 2, 1], dtype=np.uint8))
    assert (tmp_path / "x").read_bytes()[:16] == bytes.fromhex("00000803 00000003 0000001c 0000001c")
    assert (tmp_path / "y").read_bytes() == bytes.fromhex("00000801 00000003 070201")


def test_write_idx_rejects_unstorable_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype must be one of uint8, .*, got int64"):
        write_idx(tmp_path / "a", np.arange(3))


def test_read_idx_of_the_real_mnist_test_labels() -> None:
    if not REAL_T10K.is_dir():
        pytest.skip(f"{REAL_T10K} not present")
    y = read_idx(REAL_T10K / "t10k-labels-idx1-ubyte.gz")
    assert y.dtype == np.uint8 and y[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y).tolist() == MNIST_T10K_COUNTS



# --------------------------------------------------------------------------- corrupt files


def _gz(payload: bytes) -> bytes:
    return gzip.compress(payload, mtime=0)


IMAGES = "train-images-idx3-ubyte.gz"
LABELS = "train-labels-idx1-ubyte.gz"


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        (IMAGES, _gz(b"\x12\x34\x56\x78" + bytes(100)), "bad IDX magic number 0x12345678"),
        (IMAGES, _gz(bytes.fromhex("00000803 0000003c 0000001c 0000001c") + bytes(500)),
         r"truncated IDX file: shape \(60, 28, 28\) needs 47040 data bytes, found 500"),
        (LABELS, _gz(bytes.fromhex("00000801 0000003c") + bytes(61)), "1 bytes after the data"),
        (LABELS, _gz(bytes.fromhex("00000801 0000003b") + bytes(59)), "has 60 images but .* has 59 labels"),
        (IMAGES, b"this is not gzip at all", "unreadable gzip"),
        (IMAGES, None, "unreadable gzip: truncated"),
        (LABELS, _gz(bytes.fromhex("00000802 00000006 0000000a") + bytes(60)),
         r"IDX labels must have 1 dimension \(n,\), got shape \(6, 10\)"),
    ],
    ids=["magic", "truncated", "trailing", "count", "not-gzip", "truncated-gzip", "labels-2d"],
)
def test_corrupt_idx_file(tmp_path: Path, file: str, content: bytes | None, message: str) -> None:
    write_mnist_dir(tmp_path / "m")
    path = tmp_path / "m" / file
    if content is None:
        content = path.read_bytes()[: len(path.read_bytes()) // 2]
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("mnist", data_dir=tmp_path / "m")
    assert str(path) in str(info.value)


def test_missing_half_of_an_idx_pair(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path / "m")
    (tmp_path / "m" / LABELS).unlink()
    with pytest.raises(DataError, match=re.escape(
        f"{tmp_path / 'm'}/train-labels-idx1-ubyte[.gz]: file not found (needed next to {IMAGES})"
    )):
        load_dataset("mnist", data_dir=tmp_path / "m")


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.getcwd, ())


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("test_batch", b"not a pickle", "bad pickle"),
        ("test_batch", pickle.dumps({b"data": _Evil()}, protocol=2), "bad pickle: .*refusing to unpickle posix.getcwd"),
        ("data_batch_3", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), r"no labels entry"),
        ("data_batch_4", pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [1, 2]}),
         r"CIFAR-10 data must be uint8 \(n, 3072\), got uint8 \(2, 10\)"),
        ("data_batch_5", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}),
         "2 images but 1 labels"),
        ("batches.meta", pickle.dumps([1, 2]), "expected a dict, got list"),
    ],
    ids=["garbage", "unsafe-global", "no-labels", "wrong-size", "count", "meta-not-dict"],
)
def test_corrupt_cifar_file(tmp_path: Path, file: str, content: bytes, message: str) -> None:
    write_cifar_dir(tmp_path / "c")
    (tmp_path / "c" / file).write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("cifar10", data_dir=tmp_path / "c")
    assert str(tmp_path / "c" / file) in str(info.value)


def test_missing_cifar_batch(tmp_path: Path) -> None:
    write_cifar_dir(tmp_path / "c")
    (tmp_path / "c" / "data_batch_2").unlink()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'c' / 'data_batch_2'}: file not found")):
        load_dataset("cifar10", data_dir=tmp_path / "c")


def test_corrupt_and_incomplete_npz(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(DataError, match=re.escape(f"{bad}: unreadable npz file")):
        load_dataset(f"npz:{bad}")
    keys = tmp_path / "keys.npz"
    np.savez(keys, images=np.zeros((2, 2, 2)), targets=np.zeros(2))
    with pytest.raises(DataError, match=re.escape(
        f"{keys}: npz needs keys x_train, y_train, x_test, y_test (or x, y to be split), found images, targets"
    )):
        load_dataset(f"npz:{keys}")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'none.npz'}: file not found")):
        load_dataset(f"npz:{tmp_path / 'none.npz'}")


def test_bad_pixel_values_in_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "neg.npz", x=np.full((4, 2, 2), -3.0), y=np.arange(4))
    with pytest.raises(DataError, match=r"pixel values must be in \[0, 1\] or \[0, 255\], got \[-3, -3\]"):
        load_dataset(f"npz:{tmp_path / 'neg.npz'}")

