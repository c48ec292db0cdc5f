"""Tests for automnist.data.registry: digits, arguments, users' own files, register_dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automnist.data import (
    DIGIT_CLASSES,
    Dataset,
    available_datasets,
    load_dataset,
    register_dataset,
    registry,
    write_idx,
)
from automnist.errors import DataError
from automnist.spec import NoiseSpec
from test_data_formats import as_float, images

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



# --------------------------------------------------------------------------- users' own files and loaders


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
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))

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

