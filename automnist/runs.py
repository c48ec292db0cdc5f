"""A run: its name, its folder, its record in the store (created once, ended once), and
the data it trains on.

Every kind of run (a search, a sweep, a range test, a denoising comparison, k-fold CV)
is created with :func:`create_spec_run` and ended by :meth:`Store.recording`, so a run's
metadata and its final status (``finished``, ``interrupted``, ``failed``) are written
the same way everywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automnist.data import Dataset, apply_noise, load_dataset
from automnist.errors import SpecError
from automnist.records import TrialRecord
from automnist.spec import SearchSpec

if TYPE_CHECKING:
    from automnist.store import Store

__all__ = ["RUN_NAME_RULE", "SearchResult", "library_versions", "check_run_name", "default_run_name", "run_dir",
           "replaced_whole", "write_text_whole", "create_spec_run", "spec_text", "prepare_data"]

#: The libraries a stored result depends on.
_LIBRARIES = ("automnist", "tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "scikit-learn", "scikeras",
              "numpy", "pandas", "optuna")


@dataclass
class SearchResult:
    """What a finished run returns."""

    run: str
    spec: SearchSpec
    trials: list[TrialRecord]
    best: TrialRecord | None
    run_dir: Path
    duration_s: float
    final: dict[str, Any] = field(default_factory=dict)  # refit / ensemble after the search (automnist.final)

    @property
    def n_ok(self) -> int:
        return sum(t.status == "ok" for t in self.trials)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    out = {"python": platform.python_version()}
    for dist in _LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


#: The run-name rule: 1 to 100 characters, ASCII letters, digits, ``-``, ``_`` and ``.``, starting
#: with a letter or digit.  A valid name is its own folder name (``results/<name>/``), so two
#: names never share a folder; ``.``, ``..``, ``/``, spaces and over-long names are refused.
RUN_NAME_RULE = ("1 to 100 characters: ASCII letters, digits, '-', '_' and '.', starting with a letter or digit")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_name(name: Any) -> str:
    """``name`` if it follows the run-name rule (:data:`RUN_NAME_RULE`), else :class:`SpecError`."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise SpecError("", "run name", f"must be {RUN_NAME_RULE}, got {shown}")
    return name


def _slug(text: str, limit: int) -> str:
    """``text`` as run-name characters: other characters become ``_``, at most ``limit`` long."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip("._-")[:limit].rstrip("._-")
    return slug or "run"


def default_run_name(spec: SearchSpec, kind: str | None = None, *, unique: bool = False) -> str:
    """``<spec name>[-<kind>]-<YYYYmmdd-HHMMSS>`` (``unique`` adds 6 random hex digits, for
    estimators that may start several runs in one second).

    The spec name is made to follow the run-name rule (other characters become ``_``,
    at most 60 of them), so a default name is always a valid run name.
    """
    parts = [_slug(spec.name, 60)] + ([kind] if kind else []) + [time.strftime("%Y%m%d-%H%M%S")]
    if unique:
        parts.append(uuid.uuid4().hex[:6])
    return check_run_name("-".join(parts))


def run_dir(results_dir: str | Path, run: str) -> Path:
    """Where a run's files (best model, predictions, report, tuner state) live: ``<results>/<run>``.

    A name made before the run-name rule (spaces, ``/``, ...) gets its characters replaced
    and a hash of the whole name appended, so it never shares a folder with another name.
    """
    if _RUN_NAME.fullmatch(run):
        return Path(results_dir) / run
    digest = hashlib.sha256(run.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return Path(results_dir) / f"{_slug(run, 80)}-{digest}"


@contextmanager
def replaced_whole(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write, put over ``path`` with ``os.replace`` once the
    ``with`` block ends, so that a reader or a kill at any moment finds the old file or the new
    one, whole; removed if the block fails.  It is named for this process and thread (workers of
    one run share its folder; the chief's oracle server writes from its threads) and ends with
    ``.tmp``, then ``suffix`` for writers that go by it (``.keras`` for ``model.save``, ``.npz``
    for ``np.savez``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_whole(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` whole (:func:`replaced_whole`): a report a browser reloads,
    Keras Tuner's state files."""
    with replaced_whole(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def spec_text(spec: SearchSpec) -> str:
    """The spec file's text, followed by the effective spec after command-line overrides."""
    try:
        text = Path(spec.source).read_text(encoding="utf-8")
    except OSError:
        text = ""
    effective = json.dumps(spec.to_dict(), indent=2, default=str)
    if not text:
        return effective
    return f"{text.rstrip()}\n\n# effective spec after command-line overrides:\n# " + effective.replace("\n", "\n# ")


def create_spec_run(
    store: Store,
    name: str,
    spec: SearchSpec,
    *,
    kind: str = "search",
    strategy: str | None = None,
    seed: int | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> int:
    """Record a new run made from ``spec``: its text, hash, data set, seed and library versions.

    ``strategy`` and ``seed`` default to the spec's; ``extra_config`` is merged into the
    stored config (e.g. the settings of a range test).

    Raises
    ------
    SpecError
        If ``name`` breaks the run-name rule (:data:`RUN_NAME_RULE`).
    """
    check_run_name(name)
    return store.create_run(
        name,
        kind=kind,
        spec_name=spec.name,
        spec_text=spec_text(spec),
        spec_hash=spec.hash,
        strategy=spec.search.strategy if strategy is None else strategy,
        dataset=spec.data.dataset,
        seed=spec.search.seed if seed is None else int(seed),
        config={**spec.to_dict(), **(extra_config or {})},
        versions=library_versions(),
    )


def prepare_data(spec: SearchSpec, data_dir: str | None = None) -> Dataset:
    """Load the spec's data set once per run (subset, image size and noise applied).

    With ``denoise:`` in the spec, a denoising autoencoder is trained here (noisy -> clean
    training images, :func:`automnist.autoencoder.denoise_dataset`) and the returned images
    are its output.
    """
    d = spec.data
    clean = load_dataset(d.dataset, data_dir=data_dir or d.data_dir, subset=d.subset, seed=d.split_seed,
                         test_split=d.test_split, image_size=d.image_size)
    if d.noise is None:
        return clean
    ds = apply_noise(clean, d.noise)
    if spec.denoise is not None:
        from automnist.autoencoder import denoise_dataset  # trains a Keras model

        ds, _ = denoise_dataset(ds, clean.x_train, spec.denoise, d.noise, seed=spec.search.seed)
    return ds
