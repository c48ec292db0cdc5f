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

Modules: :mod:`~automnist.data.dataset` (the values), :mod:`~automnist.data.formats` (file
readers), :mod:`~automnist.data.locate` (where the files are), :mod:`~automnist.data.transforms`
(split, subset, resize, noise) and :mod:`~automnist.data.registry` (loading by name).
"""

from automnist.data.dataset import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    Dataset,
    DatasetInfo,
    DatasetLoader,
)
from automnist.data.formats import read_idx, write_idx
from automnist.data.locate import ENV_VAR, SYSTEM_DATA_DIRS, keras_cache_dir
from automnist.data.registry import DATASETS, available_datasets, load_dataset, register_dataset
from automnist.data.transforms import (
    NOISE_KINDS,
    add_noise,
    apply_noise,
    index_labels,
    resize_images,
    stratified_split,
)

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "DIGIT_CLASSES",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "NOISE_KINDS",
    "SYSTEM_DATA_DIRS",
    "Dataset",
    "DatasetInfo",
    "DatasetLoader",
    "add_noise",
    "apply_noise",
    "available_datasets",
    "index_labels",
    "keras_cache_dir",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "resize_images",
    "stratified_split",
    "write_idx",
]
