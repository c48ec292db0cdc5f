"""Quiet by default: TensorFlow's and Keras' log lines silenced before TensorFlow loads,
and automnist's own warnings printed once each, as one line in automnist's words.

:func:`configure_output` is called by the ``automnist`` command before any subcommand
runs (so before TensorFlow is imported); ``--verbose`` keeps every line.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any, TextIO

__all__ = ["configure_output", "show_warning"]

#: Modules whose Python warnings are TensorFlow's or Keras' internals, not the user's business.
_LIBRARY_WARNINGS = r"(keras|tensorflow|tf_keras|absl|h5py|google\.protobuf)(\.|$)"
_LIBRARY_LOGGERS = ("tensorflow", "absl", "keras", "h5py")

_seen: set[str] = set()
_hooked: set[str] = set()
_installed = False


def configure_output(verbose: bool = False) -> None:
    """Silence TensorFlow (C++ and Python) and Keras unless ``verbose``.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (no ``cpu_feature_guard``, oneDNN or grappler
    ``remapper`` lines; a value the user set is kept) and ``ABSL_MIN_LOG_LEVEL``, lowers the
    ``tensorflow``/``absl``/``keras`` loggers to errors, ignores their Python warnings, and
    prints automnist's own warnings as ``automnist: warning: ...``, once per message.
    Must run before TensorFlow is imported to silence its C++ start-up lines: TensorFlow
    2.21 logs "oneDNN custom operations are on" through absl before any log level applies
    (on CPUs where oneDNN is on by default), so those are filtered out of the C-level
    stderr while ``tensorflow`` is imported.
    """
    global _installed
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=_LIBRARY_WARNINGS)
        # Keras Tuner prints a traceback for every failed or infeasible trial (config.DEBUG);
        # automnist records the reason with the trial and shows it in the leaderboard
        _after_import("keras_tuner.src.config", lambda config: setattr(config, "DEBUG", False))
        _quiet_import("tensorflow")
    if not _installed:
        _installed = True
        previous = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if not show_warning(message, filename, file):
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show


def show_warning(message: Warning | str, filename: str, file: TextIO | None = None) -> bool:
    """Print an automnist warning as ``automnist: warning: <one line>``, once per text.

    Returns False for a warning that is not automnist's (shown the usual way).
    """
    if not _is_ours(filename, message):
        return False
    text = " ".join(str(message).split())
    if text not in _seen:
        _seen.add(text)
        print(f"automnist: warning: {text}", file=file or sys.stderr)
    return True


def _after_import(name: str, change: Callable[[ModuleType], None]) -> None:
    """Call ``change(module)`` once module ``name`` is imported (now if it already is),
    without importing it (Keras Tuner would import TensorFlow)."""
    if name in sys.modules:
        change(sys.modules[name])
        return

    def run_then_change(run: Callable[[ModuleType], None], module: ModuleType) -> None:
        run(module)
        change(module)

    _wrap_import(name, run_then_change)


#: TensorFlow's start-up lines on the C-level stderr: absl's INFO/WARNING lines
#: (``I0000 00:00:...  123 port.cc:153] oneDNN ...``), absl's "before InitializeLog" line and
#: the continuation of ``cpu_feature_guard``'s message.  Errors (``E``/``F``) are kept.
_TF_START_UP = re.compile(
    r"^([IW]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags)")


def _quiet_import(name: str) -> None:
    """Import module ``name`` (when something imports it) with the C-level stderr (fd 2)
    going to a file, then write back every line that is not one of TensorFlow's start-up
    lines: an import error or a C++ error still shows."""
    if name in sys.modules:
        return

    def run_filtered(run: Callable[[ModuleType], None], module: ModuleType) -> None:
        with _filtered_stderr(_TF_START_UP):
            run(module)

    _wrap_import(name, run_filtered)


def _wrap_import(name: str, wrap: Callable[[Callable[[ModuleType], None], ModuleType], None]) -> None:
    """Run module ``name``'s code, the next time it is imported, as ``wrap(run, module)``."""
    if name in _hooked:
        return
    _hooked.add(name)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            _hooked.discard(name)
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module
                spec.loader.exec_module = lambda module: wrap(run, module)  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Finder())


class _filtered_stderr:
    """Send fd 2 to a temporary file for the ``with`` block, then copy its lines that
    ``noise`` does not match to the real stderr."""

    def __init__(self, noise: re.Pattern[str]) -> None:
        self.noise = noise

    def __enter__(self) -> None:
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
        except (OSError, ValueError):  # no fd 2 (a GUI, a closed stream): nothing to filter
            self.saved = -1
            return
        self.file = tempfile.TemporaryFile()
        os.dup2(self.file.fileno(), 2)

    def __exit__(self, *exc: object) -> None:
        if self.saved < 0:
            return
        try:
            sys.stderr.flush()
        except ValueError:
            pass
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        text = self.file.read().decode("utf-8", errors="replace")
        self.file.close()
        kept = "".join(line for line in text.splitlines(keepends=True) if not self.noise.match(line))
        if kept:
            sys.stderr.write(kept)
            sys.stderr.flush()


def _is_ours(filename: str, message: Any) -> bool:
    """A warning raised by automnist (or one whose text names automnist's estimators)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(filename).startswith(here) or str(message).startswith(("KerasCNNClassifier", "AutoCNN"))
