"""Tests for automnist.data.transforms: stratified split, subset, label indices, noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from automnist.data import Dataset, add_noise, apply_noise, index_labels, load_dataset, stratified_split
from automnist.errors import DataError
from automnist.spec import NoiseSpec

# --------------------------------------------------------------------------- split and subset


def test_stratified_split_keeps_class_shares_and_falls_back_to_random() -> None:
    y = np.array([0] * 6 + [1] * 6)
    first, second, stratified = stratified_split(y, 3, test_size=0.5)
    assert stratified
    assert first.tolist() == [3, 4, 5, 7, 10, 11] and second.tolist() == [0, 1, 2, 6, 8, 9]
    assert y[second].tolist() == [0, 0, 0, 1, 1, 1]
    keep, rest, stratified = stratified_split(y, 3, train_size=4)
    assert stratified and keep.tolist() == [3, 5, 10, 11] and len(rest) == 8
    # class 2 has a single image: scikit-learn cannot stratify, the split is the seeded random one
    lonely = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    first, second, stratified = stratified_split(lonely, 0, test_size=0.25)
    assert not stratified
    assert first.tolist() == [0, 3, 4, 5, 6, 8] and second.tolist() == [1, 2, 7]
    plain_first, plain_second = train_test_split(np.arange(9), test_size=0.25, random_state=0)
    assert first.tolist() == sorted(plain_first) and second.tolist() == sorted(plain_second)


def test_index_labels_maps_labels_of_all_parts_to_indices() -> None:
    (train, test), names = index_labels(np.array([30, 10, 20, 10]), np.array([20.0, 30.0]))
    assert names == ("10", "20", "30")
    assert train.tolist() == [2, 0, 1, 0] and test.tolist() == [1, 2]
    assert train.dtype == np.int64 and test.dtype == np.int64


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



# --------------------------------------------------------------------------- noise


def test_apply_noise_uses_seed_s_on_train_and_s_plus_1_on_test() -> None:
    rng = np.random.default_rng(0)
    x_train = rng.random((6, 4, 4, 1), dtype=np.float32)
    x_test = rng.random((3, 4, 4, 1), dtype=np.float32)
    clean = Dataset("tiny", x_train, np.arange(6) % 2, x_test, np.arange(3) % 2, ("a", "b"), "random")
    noisy = apply_noise(clean, NoiseSpec(kind="gaussian", std=0.2, seed=7))
    np.testing.assert_array_equal(noisy.x_train, add_noise(x_train, kind="gaussian", std=0.2, seed=7))
    np.testing.assert_array_equal(noisy.x_test, add_noise(x_test, kind="gaussian", std=0.2, seed=8))
    assert not np.array_equal(noisy.x_train, x_train) and not np.array_equal(noisy.x_test, x_test)
    assert noisy.source == "random; gaussian noise std=0.2 on train, test (seed=7)"
    only_test = apply_noise(clean, NoiseSpec(kind="salt_pepper", amount=0.25, on=("test",), seed=3))
    assert only_test.x_train is x_train  # parts not in `on` are untouched
    np.testing.assert_array_equal(only_test.x_test, add_noise(x_test, kind="salt_pepper", amount=0.25, seed=4))
    np.testing.assert_array_equal(only_test.y_train, clean.y_train)
    assert only_test.source == "random; salt_pepper noise amount=0.25 on test (seed=3)"


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

