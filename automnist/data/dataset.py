"""The values of the data layer: a loaded :class:`Dataset`, a :class:`DatasetInfo`, the loader contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from automnist.errors import DataError

__all__ = [
    "CIFAR10_CLASSES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "DatasetInfo",
    "DatasetLoader",
]

DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


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
    """What :func:`~automnist.data.register_dataset` accepts: keyword arguments in, a full Dataset out.

    ``subset`` and ``noise`` are applied by :func:`~automnist.data.load_dataset` afterwards;
    ``test_split`` and ``seed`` are for data sets without their own test split.
    """

    def __call__(self, *, data_dir: str | None, seed: int, test_split: float) -> Dataset: ...
