"""Tests for automnist.data.locate: search order, keras cache and downloads, available_datasets."""

from __future__ import annotations

import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from automnist.data import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    available_datasets,
    load_dataset,
    locate,
)
from automnist.errors import DataError
from test_data_formats import (
    MNIST_T10K_COUNTS,
    REAL_T10K,
    as_float,
    images,
    labels,
    write_cifar_dir,
    write_mnist_dir,
)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the machine's AUTOMNIST_DATA, /usr/share/datasets or ~/.keras.

    Returns the temporary KERAS_HOME.
    """
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    home = tmp_path / "home"
    keras_home = home / ".keras"
    keras_home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    return keras_home


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
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (real,))
    info = {i.name: i for i in available_datasets()}["fashion_mnist"]
    assert info.available and info.location == "/usr/share/datasets/fashion-mnist"

