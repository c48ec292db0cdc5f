"""Finding a data set's files: the user's directory, system data dirs, the keras cache, else a keras download."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from automnist.data.dataset import CIFAR10_CLASSES, DIGIT_CLASSES, FASHION_MNIST_CLASSES
from automnist.errors import DataError

__all__ = ["ENV_VAR", "SYSTEM_DATA_DIRS", "keras_cache_dir"]

ENV_VAR = "AUTOMNIST_DATA"
"""Environment variable naming a directory searched when ``data_dir`` is not given."""

SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
"""System-wide data directories holding ``<name>/`` subdirectories (Debian ``dataset-*``).

Read from this module: rebind ``automnist.data.locate.SYSTEM_DATA_DIRS`` to change them.
"""


# --------------------------------------------------------------------------- IDX file names

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


# --------------------------------------------------------------------------- where each data set lives


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


def _missing_note(spec: _Spec) -> str:
    """What :func:`~automnist.data.available_datasets` says of a data set found nowhere."""
    return (
        f"not in data_dir/{ENV_VAR}, {', '.join(map(str, SYSTEM_DATA_DIRS))} or the keras cache "
        f"{keras_cache_dir()}; keras.datasets.{spec.keras_module}.load_data() downloads it "
        f"on first use (needs internet)"
    )


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
