"""Tests for automnist.data: registry, IDX / CIFAR / npz readers, search order, subsets, noise."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from automnist import data
from automnist.data import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    Dataset,
    add_noise,
    available_datasets,
    load_dataset,
    read_idx,
    register_dataset,
    write_idx,
)
from automnist.errors import DataError
from automnist.spec import NoiseSpec

REAL_T10K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-t10k"
# Class counts of the real MNIST test set (t10k-labels-idx1-ubyte).
MNIST_T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the machine's AUTOMNIST_DATA, /usr/share/datasets or ~/.keras.

    Returns the temporary KERAS_HOME.
    """
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    home = tmp_path / "home"
    keras_home = home / ".keras"
    keras_home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    return keras_home


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


@pytest.fixture
def real_keras(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The real keras loaders with their cache in the temp KERAS_HOME and no network.

    Returns a dict ``file name -> local file`` that the patched ``urlretrieve`` "downloads"
    from; names not in it fail like an unreachable server.
    """
    file_utils = pytest.importorskip("keras.src.utils.file_utils")
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(isolated))  # keras reads KERAS_HOME at import
    served: dict[str, Path] = {}

    def urlretrieve(url: str, filename: str, reporthook: object = None) -> tuple[str, None]:
        source = served.get(url.rsplit("/", 1)[-1])
        if source is None:
            raise urllib.error.URLError("no network in tests")
        shutil.copyfile(source, filename)
        return filename, None

    monkeypatch.setattr(file_utils, "urlretrieve", urlretrieve)
    # keras checks mnist.npz / the CIFAR archive against the real files' sha256.
    monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)
    return served


# --------------------------------------------------------------------------- digits


def test_digits_shape_range_and_balance() -> None:
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1437, 8, 8, 1) and ds.x_test.shape == (360, 8, 8, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # 0..16 scaled by 1/16 exactly
    np.testing.assert_array_equal(ds.x_test * 16, np.round(ds.x_test * 16))
    assert ds.class_names == DIGIT_CLASSES and ds.n_classes == 10 and ds.input_shape == (8, 8, 1)
    assert np.bincount(ds.y_test).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]
    assert np.bincount(ds.y_train).tolist() == [142, 146, 142, 146, 145, 145, 145, 143, 139, 144]
    assert "load_digits" in ds.source and "test_split=0.2, seed=0" in ds.source


def test_digits_split_is_deterministic_per_seed() -> None:
    a, b, c = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert len(load_dataset("digits", test_split=0.5).y_test) == 899


def test_subset_is_stratified_seeded_and_cuts_test() -> None:
    a = load_dataset("digits", subset=200, seed=1)
    assert np.bincount(a.y_train).tolist() == [20] * 10
    assert np.bincount(a.y_test).tolist() == [10] * 10  # max(200 // 4, 10 * 10) = 100
    b = load_dataset("digits", subset=200, seed=1)
    c = load_dataset("digits", subset=200, seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert "subset of 200 of 1437 training images" in a.source
    big = load_dataset("digits", subset=800)
    assert (len(big.y_train), len(big.y_test)) == (800, 200)


def test_subset_larger_than_data_keeps_everything() -> None:
    ds = load_dataset("digits", subset=5000)
    assert (len(ds.y_train), len(ds.y_test)) == (1437, 360)
    assert "all used" in ds.source


def test_subset_smaller_than_class_count_is_an_error() -> None:
    with pytest.raises(DataError, match=r"subset must be at least the number of classes \(10\), got 5"):
        load_dataset("digits", subset=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_split": 1.0}, r"test_split must be a fraction in \(0, 1\), got 1.0"),
        ({"subset": 0}, r"subset must be null or a positive integer, got 0"),
        ({"seed": "x"}, r"seed must be an integer, got 'x'"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset("digits", **kwargs)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(DataError, match=r"unknown data set 'svhn'; known: cifar10, digits, fashion_mnist, mnist"):
        load_dataset("svhn")


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


# --------------------------------------------------------------------------- local directories


def test_mnist_from_data_dir(tmp_path: Path) -> None:
    parts = write_mnist_dir(tmp_path / "mine")
    ds = load_dataset("mnist", data_dir=str(tmp_path / "mine"))
    assert ds.x_train.shape == (60, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(ds.x_train, as_float(parts["train"][0]))
    np.testing.assert_array_equal(ds.y_test, parts["t10k"][1].astype(np.int64))
    assert ds.class_names == DIGIT_CLASSES
    assert ds.source == f"IDX files in {tmp_path / 'mine'} (data_dir)"


def test_fashion_mnist_from_env_var_subdirectory_raw_idx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = write_mnist_dir(tmp_path / "root" / "fashion-mnist", gz=False)
    write_mnist_dir(tmp_path / "root" / "mnist", n_train=30, n_test=10)
    monkeypatch.setenv("AUTOMNIST_DATA", str(tmp_path / "root"))
    ds = load_dataset("fashion-mnist")
    assert ds.name == "fashion_mnist" and ds.class_names == FASHION_MNIST_CLASSES
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(ds.x_test, as_float(parts["t10k"][0]))
    assert "(AUTOMNIST_DATA)" in ds.source
    assert len(load_dataset("mnist").y_train) == 30


def test_data_dir_wins_over_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist_dir(tmp_path / "env", n_train=30, n_test=10)
    write_mnist_dir(tmp_path / "arg", n_train=40, n_test=10)
    monkeypatch.setenv("AUTOMNIST_DATA", str(tmp_path / "env"))
    assert len(load_dataset("mnist", data_dir=tmp_path / "arg").y_train) == 40


def test_t10k_only_directory_is_split(tmp_path: Path) -> None:
    parts = write_mnist_dir(tmp_path / "t10k", n_test=50, train=False)
    ds = load_dataset("mnist", data_dir=tmp_path / "t10k", seed=3)
    assert (len(ds.y_train), len(ds.y_test)) == (40, 10)
    assert np.bincount(ds.y_test).tolist() == [1] * 10
    assert "t10k test files only" in ds.source and "50 images split stratified into 40 train / 10 test" in ds.source
    x_all = as_float(parts["t10k"][0])
    # every image comes from the t10k file, none twice
    together = np.concatenate([ds.x_train, ds.x_test]).reshape(50, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, x_all.reshape(50, -1)))
    again = load_dataset("mnist", data_dir=tmp_path / "t10k", seed=3)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_real_mnist_t10k_directory() -> None:
    if not REAL_T10K.is_dir():
        pytest.skip(f"{REAL_T10K} not present (the shared MNIST test set)")
    ds = load_dataset("mnist", data_dir=REAL_T10K)
    assert ds.x_train.shape == (8000, 28, 28, 1) and ds.x_test.shape == (2000, 28, 28, 1)
    counts = np.bincount(ds.y_train, minlength=10) + np.bincount(ds.y_test, minlength=10)
    assert counts.tolist() == MNIST_T10K_COUNTS
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0


def test_system_data_dir(tmp_path: Path) -> None:
    parts = write_mnist_dir(tmp_path / "system" / "fashion-mnist")
    ds = load_dataset("fashion_mnist")
    np.testing.assert_array_equal(ds.x_train, as_float(parts["train"][0]))
    assert ds.source == f"IDX files in {tmp_path / 'system' / 'fashion-mnist'} (system data dir)"


def test_cifar10_from_data_dir_keras2_layout(tmp_path: Path) -> None:
    batches = write_cifar_dir(tmp_path / "d" / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path / "d")
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (6, 32, 32, 3)
    pixels, targets = batches["data_batch_2"]
    np.testing.assert_array_equal(ds.x_train[4], pixels[0].reshape(3, 32, 32).transpose(1, 2, 0) / np.float32(255))
    assert ds.y_train[4:8].tolist() == targets
    assert ds.class_names == CIFAR10_CLASSES


# --------------------------------------------------------------------------- keras cache


def test_mnist_npz_in_keras_cache_matches_the_real_keras_loader(isolated: Path, real_keras: dict) -> None:
    import keras

    arrays = {"x_train": images(30, 0), "y_train": labels(30), "x_test": images(10, 1), "y_test": labels(10, 5)}
    (isolated / "datasets").mkdir()
    np.savez_compressed(isolated / "datasets" / "mnist.npz", **arrays)
    ds = load_dataset("mnist")
    assert ds.source == f"npz {isolated / 'datasets' / 'mnist.npz'} (keras cache)"
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    np.testing.assert_array_equal(ds.x_train, as_float(x_train))
    np.testing.assert_array_equal(ds.x_test, as_float(x_test))
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)


def test_fashion_mnist_keras_cache_matches_the_real_keras_loader(isolated: Path, real_keras: dict) -> None:
    import keras

    write_mnist_dir(isolated / "datasets" / "fashion-mnist")
    ds = load_dataset("fashion_mnist")
    assert "(keras cache)" in ds.source and ds.class_names == FASHION_MNIST_CLASSES
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    np.testing.assert_array_equal(ds.x_train, as_float(x_train))
    np.testing.assert_array_equal(ds.x_test, as_float(x_test))
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)


@pytest.mark.parametrize("layout", ["cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"])
def test_cifar10_keras_cache_matches_the_real_keras_batch_reader(
    isolated: Path, real_keras: dict, layout: str
) -> None:
    from keras.src.datasets.cifar import load_batch  # what keras.datasets.cifar10.load_data() uses

    directory = isolated / "datasets" / layout
    write_cifar_dir(directory)
    ds = load_dataset("cifar10")
    assert ds.source.startswith(f"CIFAR batches in {directory} (keras cache)")
    pixels, targets = load_batch(str(directory / "test_batch"))
    np.testing.assert_array_equal(ds.x_test, pixels.transpose(0, 2, 3, 1) / np.float32(255))
    assert ds.y_test.tolist() == list(targets)
    assert ds.class_names == CIFAR10_CLASSES


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_download_through_real_keras_loader_then_cache(
    tmp_path: Path, real_keras: dict, name: str
) -> None:
    server = tmp_path / "server"
    if name == "mnist":
        server.mkdir()
        arrays = {"x_train": images(30, 0), "y_train": labels(30), "x_test": images(10, 1), "y_test": labels(10)}
        np.savez_compressed(server / "mnist.npz", **arrays)
        real_keras["mnist.npz"] = server / "mnist.npz"
        expected = arrays["x_train"]
    else:
        parts = write_mnist_dir(server)
        real_keras.update({p.name: p for p in server.iterdir()})
        expected = parts["train"][0]
    downloaded = load_dataset(name)
    assert downloaded.source.startswith(f"keras.datasets.{name}.load_data()")
    cached = load_dataset(name)
    assert "(keras cache)" in cached.source
    np.testing.assert_array_equal(downloaded.x_train, as_float(expected))
    np.testing.assert_array_equal(cached.x_train, downloaded.x_train)
    np.testing.assert_array_equal(cached.y_test, downloaded.y_test)


@pytest.mark.slow
def test_cifar10_download_of_an_archive_through_the_real_keras_loader(tmp_path: Path, real_keras: dict) -> None:
    """keras.datasets.cifar10.load_data() fetches cifar-10-python.tar.gz, extracts it into its cache and reads it.

    keras reads exactly 10,000 images per training batch, so the batches are full size,
    but flat grey images: the archive is a few hundred kB.
    """
    import tarfile

    batches = write_cifar_dir(tmp_path / "server" / "cifar-10-batches-py", n_per_batch=10_000, n_test=5, flat=True)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(tmp_path / "server" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    shutil.rmtree(tmp_path / "server")
    assert archive.stat().st_size < 5_000_000
    real_keras[archive.name] = archive
    downloaded = load_dataset("cifar10")
    assert downloaded.source.startswith("keras.datasets.cifar10.load_data()")
    assert downloaded.x_train.shape == (50_000, 32, 32, 3) and downloaded.x_test.shape == (5, 32, 32, 3)
    assert downloaded.x_train[12_345].max() == downloaded.x_train[12_345].min() == np.float32((2345 + 37) % 256 / 255)
    pixels, targets = batches["test_batch"]
    expected = (pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / np.float32(255)).astype(np.float32)
    np.testing.assert_array_equal(downloaded.x_test, expected)
    assert downloaded.y_test.tolist() == targets
    assert downloaded.y_train.tolist() == [t for k in range(1, 6) for t in batches[f"data_batch_{k}"][1]]
    sample, y_train = downloaded.x_train[::997].copy(), downloaded.y_train
    del downloaded, batches
    cached = load_dataset("cifar10")  # the second time from the extracted cache, without keras
    assert "(keras cache)" in cached.source
    np.testing.assert_array_equal(cached.x_train[::997], sample)
    np.testing.assert_array_equal(cached.y_train, y_train)


def test_failed_download_lists_every_place_looked(tmp_path: Path, isolated: Path, real_keras: dict) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path / "empty")
    message = str(info.value)
    assert message.startswith("data set 'mnist' not found; looked in:")
    for place in (
        f"data_dir {tmp_path / 'empty'}: no mnist files",
        f"{tmp_path / 'system'}/{{mnist}}: no mnist files",
        f"keras cache {isolated / 'datasets' / 'mnist.npz'}: not there",
        "keras.datasets.mnist.load_data(): download failed:",
        "no network in tests",
    ):
        assert place in message


# --------------------------------------------------------------------------- users' own files


def test_npz_user_file_with_string_labels(tmp_path: Path) -> None:
    x_train = images(9, 0, (5, 6))
    x_test = np.full((3, 5, 6, 1), 0.25, dtype=np.float64)
    names = np.array(["dog", "cat", "bird"] * 3)
    np.savez(tmp_path / "pets.npz", x_train=x_train, y_train=names, x_test=x_test, y_test=names[:3])
    ds = load_dataset(f"npz:{tmp_path / 'pets.npz'}")
    assert ds.class_names == ("bird", "cat", "dog")
    assert ds.y_train[:3].tolist() == [2, 1, 0] and ds.y_test.tolist() == [2, 1, 0]
    assert ds.input_shape == (5, 6, 1) and ds.x_test.dtype == np.float32
    np.testing.assert_array_equal(ds.x_train, as_float(x_train))
    assert float(ds.x_test.max()) == 0.25


def test_npz_user_file_with_x_y_only_is_split(tmp_path: Path) -> None:
    y = np.repeat([10, 20], 20)
    np.savez(tmp_path / "xy.npz", x=images(40, 2, (4, 4)), y=y)
    a = load_dataset(f"npz:{tmp_path / 'xy.npz'}", test_split=0.25, seed=5)
    b = load_dataset(f"npz:{tmp_path / 'xy.npz'}", test_split=0.25, seed=5)
    assert a.class_names == ("10", "20")
    assert np.bincount(a.y_test).tolist() == [5, 5] and len(a.y_train) == 30
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert "(x, y only)" in a.source


def test_idx_user_directory_encodes_labels(tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    write_idx(tmp_path / "own" / "train-images-idx3-ubyte", images(6, 0, (3, 3)))
    write_idx(tmp_path / "own" / "train-labels-idx1-ubyte", np.array([3, 5, 7, 3, 5, 7], dtype=np.uint8))
    write_idx(tmp_path / "own" / "t10k-images-idx3-ubyte", images(3, 1, (3, 3)))
    write_idx(tmp_path / "own" / "t10k-labels-idx1-ubyte", np.array([7, 7, 3], dtype=np.uint8))
    ds = load_dataset(f"idx:{tmp_path / 'own'}")
    assert ds.name == f"idx:{tmp_path / 'own'}"
    assert ds.class_names == ("3", "5", "7")
    assert ds.y_train.tolist() == [0, 1, 2, 0, 1, 2] and ds.y_test.tolist() == [2, 2, 0]


def test_register_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "DATASETS", dict(data.DATASETS))

    def tiny(*, data_dir: str | None, seed: int, test_split: float) -> Dataset:
        x = np.zeros((20, 2, 2, 1), dtype=np.float32)
        y = np.arange(20, dtype=np.int64) % 2
        return Dataset("tiny", x, y, x[:4], y[:4], ("a", "b"), f"zeros, seed={seed}")

    register_dataset("Tiny", tiny)
    ds = load_dataset("tiny", seed=4, subset=10)
    assert len(ds.y_train) == 10 and np.bincount(ds.y_train).tolist() == [5, 5]
    assert ds.source.startswith("zeros, seed=4")
    assert [i.name for i in available_datasets()][-1] == "tiny"
    with pytest.raises(ValueError, match="'tiny' is already registered"):
        register_dataset("tiny", tiny)


def test_noise_option_of_load_dataset() -> None:
    clean = load_dataset("digits")
    noisy = load_dataset("digits", noise=NoiseSpec(kind="salt_pepper", amount=0.5, on=("train",), seed=1))
    np.testing.assert_array_equal(noisy.x_test, clean.x_test)
    changed = np.mean(noisy.x_train != clean.x_train)
    assert 0.3 < changed < 0.5  # half replaced; some already were 0 or 1
    assert "salt_pepper noise amount=0.5 on train (seed=1)" in noisy.source


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


# --------------------------------------------------------------------------- available_datasets


def test_available_datasets(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path / "d" / "mnist", train=False)
    write_cifar_dir(tmp_path / "d" / "cifar10")
    infos = {i.name: i for i in available_datasets(tmp_path / "d")}
    assert list(infos) == ["digits", "mnist", "fashion_mnist", "cifar10"]
    assert infos["digits"].available and infos["digits"].location == "scikit-learn (embedded)"
    assert infos["mnist"].available and infos["mnist"].location == str(tmp_path / "d" / "mnist")
    assert infos["mnist"].note == "IDX t10k test files only: split into train/test when loaded (data_dir)"
    assert infos["cifar10"].available and infos["cifar10"].location == str(tmp_path / "d" / "cifar10")
    assert not infos["fashion_mnist"].available and infos["fashion_mnist"].location == ""
    assert "keras.datasets.fashion_mnist.load_data() downloads it" in infos["fashion_mnist"].note


def test_available_datasets_reports_incomplete_directory(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path / "d")
    (tmp_path / "d" / "t10k-images-idx3-ubyte.gz").unlink()
    info = {i.name: i for i in available_datasets(tmp_path / "d")}["mnist"]
    assert not info.available and "t10k-images-idx3-ubyte[.gz]: file not found" in info.note


def test_available_datasets_sees_the_debian_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path("/usr/share/datasets")
    if not (real / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", (real,))
    info = {i.name: i for i in available_datasets()}["fashion_mnist"]
    assert info.available and info.location == "/usr/share/datasets/fashion-mnist"


# --------------------------------------------------------------------------- noise


def test_gaussian_noise_statistics() -> None:
    x = np.full((100, 8, 8, 1), 0.5, dtype=np.float32)
    noisy = add_noise(x, kind="gaussian", std=0.1, seed=0)
    diff = noisy - x
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    assert abs(float(diff.std()) - 0.1) < 0.003 and abs(float(diff.mean())) < 0.003
    np.testing.assert_array_equal(x, 0.5)  # input untouched
    np.testing.assert_array_equal(noisy, add_noise(x, std=0.1, seed=0))
    assert not np.array_equal(noisy, add_noise(x, std=0.1, seed=1))
    clipped = add_noise(x, std=0.5, seed=0)
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    assert abs(float(np.mean(clipped == 1.0)) - 0.1587) < 0.01  # P(N(0, .5) > .5)


def test_salt_pepper_noise_fraction() -> None:
    x = np.full((50, 10, 10, 1), 0.5, dtype=np.float32)
    noisy = add_noise(x, kind="salt_pepper", amount=0.1, seed=0)
    changed = noisy != 0.5
    assert changed.sum() == 500
    assert set(np.unique(noisy[changed]).tolist()) == {0.0, 1.0}
    assert 200 < int((noisy == 1.0).sum()) < 300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "speckle"}, "kind must be one of gaussian, salt_pepper, got 'speckle'"),
     ({"std": -1.0}, "std must be >= 0, got -1.0"),
     ({"kind": "salt_pepper", "amount": 1.5}, r"amount must be in \[0, 1\], got 1.5")],
)
def test_add_noise_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        add_noise(np.zeros((1, 2, 2, 1)), **kwargs)
