"""Property-based fuzzing of the spec loader and the data loaders (issue 12).

Every generated spec either loads into a spec that can really run (validated, hashed,
round-tripped, a configuration completed and sampled through optuna, and for some the
Keras model built), or raises ``SpecError`` with one line naming a key.  Every generated
data file either loads into a usable ``Dataset`` or raises ``DataError`` naming the file.
Nothing else may escape (no traceback), and no example may take longer than the alarm
(no hang) or allocate more than the memory ceiling while loading.

Data formats: npz, IDX directories, CIFAR-10 batch pickles, image files for ``predict``.

Profiles: ``ci`` (default; 150 specs and 40 files per format, derandomized) and ``long``
(set ``AUTOMNIST_FUZZ=long``: 2,500 specs and 200 files per format, random seeds, or
``AUTOMNIST_FUZZ_SPECS`` / ``AUTOMNIST_FUZZ_FILES``); the figures are printed at the end,
e.g. ``AUTOMNIST_FUZZ=long pytest tests/test_fuzz.py -s``.
"""

from __future__ import annotations

import collections
import gzip
import io
import itertools
import json
import os
import pickle
import resource
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automnist.data import load_dataset
from automnist.data.formats import write_idx
from automnist.errors import DataError, InfeasibleConfig, SpecError
from automnist.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILES = sorted((ROOT / "search_spaces").glob("*.yaml"))
BASES = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in SPEC_FILES]
LONG = os.environ.get("AUTOMNIST_FUZZ") == "long"
_COMMON = dict(derandomize=not LONG, suppress_health_check=list(HealthCheck), deadline=None, database=None,
               print_blob=True)
settings.register_profile("fuzz-ci", max_examples=1, **_COMMON)
SPEC_EXAMPLES = int(os.environ.get("AUTOMNIST_FUZZ_SPECS", 2500)) if LONG else 150
DATA_EXAMPLES = int(os.environ.get("AUTOMNIST_FUZZ_FILES", 200)) if LONG else 40  # per data format (npz, IDX)
ALARM_S = 10  # a load taking this long is a hang
MEMORY_MB = 200  # rise of the process's peak memory while loading one input
BUILD_ONE_IN = 8  # valid specs whose Keras model is built (building costs ~0.5 s) ...
MAX_BUILDS = 10**6 if LONG else 2  # ... and at most this many in CI
FIGURES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

# --------------------------------------------------------------------------- hostile values

HOSTILE_STRINGS = ["", " ", "..", "/", "../../etc/passwd", "a/b", "x" * 5000, "<script>alert(1)</script>",
                   "\ud800", "\udcff", "\x00", "caf\xe9", "\u202e", "line\nbreak", "%s%n", "{0}", "nan", "-inf",
                   "from_lr_find", "banana", "relu", "null", "~", "yes", "on"]
EXTREME_NUMBERS = [0, -1, 1, 2, 2**31, 2**32, 2**32 - 1, 2**63, -(2**63), 10**18, 10**30, 10**309, 10**400,
                   0.0, -0.0, 1e-320, 1e308, float("inf"), float("-inf"), float("nan"), 0.5, 1.0, 1e-9]
KEYS = ["name", "model", "data", "params", "search", "objective", "denoise", "final", "units", "filters",
        "filters_1", "filters_9", "filters_01", "units_2", "kernel_size", "conv_layers", "dense_layers",
        "when", "choice", "int", "float", "default", "step", "log", "seed", "split_seed", "noise", "subset",
        "max_trials", "epochs", "cv", "batch_size", "learning_rate", "activation", "strategy", "unknown_key"]

scalars = st.one_of(
    st.sampled_from(HOSTILE_STRINGS), st.sampled_from(EXTREME_NUMBERS), st.booleans(), st.none(),
    st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _set(root: Any, path: tuple, value: Any, how: str) -> Any:
    if not path:
        return value if how == "replace" else root
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "drop":
        del parent[last]
    elif how == "replace":
        parent[last] = value
    elif how == "duplicate" and isinstance(parent, dict):
        parent[f"{last}"] = value  # a second value under a (str) copy of the key
    return root


@st.composite
def mutated_specs(draw: Any) -> bytes:
    """A real spec with 1-3 structural mutations, then maybe a text or byte mutation."""
    spec = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(spec)
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["drop", "replace", "replace", "duplicate", "add"]))
        if how == "add":
            target = spec
            for key in path:
                target = target[key]
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS))] = draw(values)
            continue
        if how == "drop" and not path:
            continue
        spec = _set(spec, path, draw(values), how)
    try:
        text = yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, RecursionError, UnicodeEncodeError):
        text = json.dumps(spec)
    tail = draw(st.sampled_from(["none"] * 6 + ["bomb", "deep", "dupkey", "bigint", "date", "alias", "truncate"]))
    if tail == "bomb":
        key = draw(st.sampled_from(["name", "description", "data: {data_dir", "search: {seed"]))
        bomb = "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else '"lol"'] * 9) + "]\n" for i in range(9))
        close = "}" if "{" in key else ""
        text = bomb + f"{key}: *x8{close}\n" + "\n".join(l for l in text.splitlines() if not l.startswith(key.split(":")[0] + ":"))
    elif tail == "deep":
        depth = draw(st.sampled_from([31, 33, 100, 2000]))
        text += "description: " + "[" * depth + "]" * depth + "\n"
    elif tail == "dupkey":
        text += text.splitlines()[0] + "\n" if text.strip() else ""
    elif tail == "bigint":
        text += "search: {seed: " + "9" * draw(st.sampled_from([21, 309, 4301, 10000])) + "}\n"
    elif tail == "date":
        text += "description: 2024-01-01\n"
    elif tail == "alias":
        text = "base: &b {units: 64}\n" + text + "extra: *b\n"
    elif tail == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16", "bytes"]))
    if encoding == "bytes":
        data = text.encode("utf-8", "surrogatepass")
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang(f"no answer within {ALARM_S} s")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _bounded(call: Any) -> Any:
    """Run ``call()`` under an alarm and a memory ceiling; returns its value or raises its error.

    The ceiling is on the process's peak resident memory (C allocations included): loading
    one input may not raise it by more than :data:`MEMORY_MB`.
    """
    before = _peak_mb()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, ALARM_S)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        assert _peak_mb() - before < MEMORY_MB, f"loading raised the peak memory by {_peak_mb() - before:.0f} MB"


_WHOLE_FILE = ("the file is empty", "a spec must be a mapping", "file too large", "text too large",
               "more than 5000 values", "invalid YAML", "more than 500 alias", "nested more than")


def _check_error(exc: Exception, source: str, figures: collections.Counter) -> None:
    message = str(exc)
    assert "\n" not in message and len(message) <= 500, message
    assert message.startswith(source), message
    assert exc.path or any(w in exc.rule for w in _WHOLE_FILE), f"names no key: {message}"
    figures["one-line error"] += 1


def _input_shape(spec: Any) -> tuple[int, int, int]:
    if spec.data.image_size is not None:
        h, w = spec.data.image_size
    else:
        h = w = {"digits": 8, "cifar10": 32}.get(spec.data.dataset, 28)
    return (h, w, 3 if spec.data.dataset == "cifar10" else 1)


def _runs(spec: Any, build: bool, figures: collections.Counter) -> None:
    """What a search does with a spec before training: hash, round trip, configurations, a model."""
    import optuna

    from automnist.builders import build_model, check_feasible
    from automnist.space import complete_config, suggest

    assert parse_spec(spec.to_dict(), source=spec.source).hash == spec.hash
    baseline = complete_config(spec, {})
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = suggest(study.ask(), spec)
    shape = _input_shape(spec)
    for config in (baseline, sampled):
        try:
            check_feasible(config, shape, spec.model)
        except InfeasibleConfig:
            figures["valid, sampled configuration infeasible for the input"] += 1
            return
    if build:
        model = build_model(sampled, shape, 10, model=spec.model, seed=0)
        assert model.count_params() > 0
        figures["valid, model built"] += 1


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def _figures_at_the_end() -> Any:
    yield
    for name, counts in FIGURES.items():  # shown with -s
        print(f"\nfuzz {name}: {dict(counts)}")


_ids = itertools.count()


@pytest.mark.slow
@settings(settings.get_profile("fuzz-ci"), max_examples=SPEC_EXAMPLES)
@given(content=mutated_specs(), build=st.integers(0, BUILD_ONE_IN - 1))
def test_fuzzed_specs_run_or_give_one_line_error(work_dir: Path, content: bytes, build: int) -> None:
    figures = FIGURES["specs"]
    path = work_dir / f"spec{next(_ids)}.yaml"
    path.write_bytes(content)
    try:
        spec = _bounded(lambda: load_spec(path))
    except SpecError as exc:
        _check_error(exc, str(path), figures)
        return
    except _Hang:
        figures["hang"] += 1
        raise
    figures["valid"] += 1
    _runs(spec, build == 0 and figures["valid, model built"] < MAX_BUILDS, figures)


# --------------------------------------------------------------------------- data files

@st.composite
def image_sets(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a small data set, valid or damaged in one way."""
    n, h, w = draw(st.integers(2, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = draw(st.integers(2, 4))
    dtype = draw(st.sampled_from(["u1", "f4", "f8", "bool"]))
    x = np.random.default_rng(n).random((n, h, w))
    x = (x * 255).astype(dtype) if dtype == "u1" else x.astype(dtype)
    y = np.arange(n) % k
    flaw = draw(st.sampled_from(["none"] * 6 + ["nan-x", "nan-y", "one-class", "empty", "0x0", "channels", "rank",
                                                 "range", "count", "text-y", "float-y", "negative-y"]))
    if flaw == "nan-x":
        x = x.astype("f4"); x[0, 0, 0] = np.nan
    elif flaw == "nan-y":
        y = y.astype("f8"); y[-1] = np.nan
    elif flaw == "one-class":
        y = np.zeros(n, "i8")
    elif flaw == "empty":
        x, y = x[:0], y[:0]
    elif flaw == "0x0":
        x = np.zeros((n, 0, draw(st.integers(0, 3))), "u1")
    elif flaw == "channels":
        x = np.zeros((n, h, w, draw(st.sampled_from([0, 1, 3, 5]))), "u1")
    elif flaw == "rank":
        x = np.zeros(draw(st.sampled_from([(n,), (n, h), (n, h, w, 1, 1)])), "u1")
    elif flaw == "range":
        x = x.astype("f4") * draw(st.sampled_from([-1.0, 300.0, 1e30]))
    elif flaw == "count":
        y = y[: draw(st.integers(0, n - 1))]
    elif flaw == "text-y":
        y = np.array(["cat", "dog", "emu"])[y % 3]
    elif flaw == "float-y":
        y = y + draw(st.sampled_from([0.0, 0.5]))
    elif flaw == "negative-y":
        y = y - 2
    return x, y


@st.composite
def corruption(draw: Any) -> Any:
    """A function damaging a file's bytes (or leaving them)."""
    kind = draw(st.sampled_from(["none", "none", "truncate", "flip", "append", "header"]))
    at, byte, junk = draw(st.integers(0, 10**6)), draw(st.integers(0, 255)), draw(st.binary(min_size=1, max_size=64))

    def damage(data: bytes) -> bytes:
        if not data or kind == "none":
            return data
        i = at % len(data)
        if kind == "truncate":
            return data[:i]
        if kind == "flip":
            return data[:i] + bytes([byte]) + data[i + 1:]
        if kind == "append":
            return data + junk
        return data[:i] + b"\xff\xff\xff\x7f" + data[i + 4:]  # a huge count somewhere in a header

    return damage


def _check_dataset(ds: Any, figures: collections.Counter) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4 and len(x) == len(y) >= 1 and min(x.shape[1:]) >= 1
        assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < ds.n_classes
    assert ds.n_classes >= 2
    figures["loaded"] += 1


def _load_data(name: str, where: str, figures: collections.Counter) -> None:
    try:
        ds = _bounded(lambda: load_dataset(name))
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message and where in message, message
        figures["one-line error"] += 1
        return
    _check_dataset(ds, figures)


@settings(settings.get_profile("fuzz-ci"), max_examples=DATA_EXAMPLES)
@given(train=image_sets(), test=image_sets(), layout=st.sampled_from(["split", "xy", "xy", "missing-key", "extra-key"]),
       compress=st.booleans(), damage=corruption())
def test_fuzzed_npz_files_load_or_give_one_line_error(work_dir: Path, train: tuple, test: tuple, layout: str,
                                                      compress: bool, damage: Any) -> None:
    path = work_dir / f"data{next(_ids)}.npz"
    arrays = {"x_train": train[0], "y_train": train[1], "x_test": test[0], "y_test": test[1]} if layout == "split" \
        else {"x": train[0], "y": train[1]}
    if layout == "missing-key":
        arrays.pop("y")
    elif layout == "extra-key":
        arrays["notes"] = np.array(["hello"])
    (np.savez_compressed if compress else np.savez)(path, **arrays)
    path.write_bytes(damage(path.read_bytes()))
    _load_data(f"npz:{path}", str(path), FIGURES["npz files"])


@settings(settings.get_profile("fuzz-ci"), max_examples=DATA_EXAMPLES)
@given(train=image_sets(), test=st.one_of(st.none(), image_sets()), gz=st.booleans(), damage=corruption(),
       which=st.sampled_from(["train-images", "train-labels", "t10k-images", "t10k-labels"]))
def test_fuzzed_idx_files_load_or_give_one_line_error(work_dir: Path, train: tuple, test: tuple | None, gz: bool,
                                                      damage: Any, which: str) -> None:
    folder = work_dir / f"idx{next(_ids)}"
    folder.mkdir()
    parts = {"train": train} if test is None else {"train": train, "t10k": test}
    for part, (x, y) in parts.items():
        for kind, array, rank in (("images", x, 3), ("labels", y, 1)):
            path = folder / f"{part}-{kind}-idx{rank}-ubyte{'.gz' if gz else ''}"
            if array.dtype.kind not in "uif":  # IDX holds numbers only: text labels become their codes
                array = np.unique(array, return_inverse=True)[1].astype("u1") if array.size else array.astype("u1")
            array = array.astype(array.dtype.newbyteorder("="))
            if array.dtype == np.int64:
                array = array.astype("i4")
            write_idx(path, array)
            if f"{part}-{kind}" == which:
                data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
                data = damage(data)
                path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    _load_data(f"idx:{folder}", str(folder), FIGURES["IDX files"])


class _Evil:  # a pickle that would run a command when unpickled by a plain pickle.load
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


@st.composite
def cifar_batches(draw: Any) -> bytes:
    """A pickled CIFAR-10 batch, valid or damaged in one way."""
    n = draw(st.integers(1, 12))
    batch: Any = {b"data": np.random.default_rng(n).integers(0, 256, (n, 3072), dtype=np.uint8),
                  b"labels": [i % 10 for i in range(n)]}
    flaw = draw(st.sampled_from(["none"] * 5 + ["shape", "dtype", "labels-range", "labels-count", "missing-key",
                                                 "not-a-dict", "evil", "empty"]))
    if flaw == "shape":
        batch[b"data"] = batch[b"data"][:, :1000]
    elif flaw == "dtype":
        batch[b"data"] = batch[b"data"].astype("f4")
    elif flaw == "labels-range":
        batch[b"labels"] = [99] * n
    elif flaw == "labels-count":
        batch[b"labels"] = batch[b"labels"][:-1]
    elif flaw == "missing-key":
        del batch[b"labels"]
    elif flaw == "not-a-dict":
        batch = [1, 2, 3]
    elif flaw == "evil":
        batch[b"labels"] = _Evil()
    elif flaw == "empty":
        batch = {b"data": np.zeros((0, 3072), np.uint8), b"labels": []}
    return pickle.dumps(batch, protocol=draw(st.sampled_from([2, 4])))


@settings(settings.get_profile("fuzz-ci"), max_examples=DATA_EXAMPLES)
@given(train=cifar_batches(), test=cifar_batches(), damage=corruption(), which=st.sampled_from(["data_batch_1", "test_batch"]))
def test_fuzzed_cifar_batches_load_or_give_one_line_error(work_dir: Path, train: bytes, test: bytes, damage: Any,
                                                          which: str) -> None:
    folder = work_dir / f"cifar{next(_ids)}"
    folder.mkdir()
    for name, data in (("data_batch_1", train), ("test_batch", test)):
        (folder / name).write_bytes(damage(data) if name == which else data)
    figures = FIGURES["CIFAR batch files"]
    try:
        ds = _bounded(lambda: load_dataset("cifar10", data_dir=folder))
    except DataError as exc:
        assert "\n" not in str(exc) and str(folder) in str(exc), str(exc)
        figures["one-line error"] += 1
        return
    _check_dataset(ds, figures)


def test_fuzz_profile_is_bounded_in_ci() -> None:
    """The CI profile runs a fixed, derandomized number of examples."""
    if not LONG:
        assert SPEC_EXAMPLES <= 250 and DATA_EXAMPLES <= 50
        assert settings.get_profile("fuzz-ci").derandomize


# --------------------------------------------------------------------------- image files (predict)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (CRC correct), with almost no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@st.composite
def image_files(draw: Any) -> bytes:
    """An image file in a common format and mode, maybe damaged, or a header claiming a huge image."""
    from PIL import Image

    if draw(st.integers(0, 9)) == 0:
        return _png_claiming(draw(st.sampled_from([0, 1, 50_000, 2**31 - 1])), draw(st.sampled_from([0, 1, 50_000])))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I", "F", "CMYK", "I;16"]))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF"]))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    img = Image.new(mode, size)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode the format cannot hold
        img.convert("RGB").save(buf, format="PNG")
    return draw(corruption())(buf.getvalue())


@settings(settings.get_profile("fuzz-ci"), max_examples=DATA_EXAMPLES)
@given(data=image_files(), shape=st.sampled_from([(8, 8, 1), (28, 28, 1), (32, 32, 3)]),
       suffix=st.sampled_from([".png", ".jpg", ".gif", ".bin"]))
def test_fuzzed_image_files_prepare_or_give_one_line_error(work_dir: Path, data: bytes, shape: tuple,
                                                           suffix: str) -> None:
    from automnist.predict import prepare_image, read_image

    path = work_dir / f"image{next(_ids)}{suffix}"
    path.write_bytes(data)
    figures = FIGURES["image files"]
    try:
        out = _bounded(lambda: prepare_image(read_image(path), shape))
    except DataError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
        figures["one-line error"] += 1
        return
    assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    figures["prepared"] += 1
