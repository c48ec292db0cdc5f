"""The ``automnist`` command: a thin argparse layer over the library.

:mod:`~automnist.cli.parser` declares the subcommands and options,
:mod:`~automnist.cli.commands` runs each subcommand (one library call each), and
:func:`main` ties them together.  TensorFlow is imported only by the subcommands that
train, so ``automnist --help`` answers at once.  Errors that automnist raises on purpose
(bad spec, missing data, unknown run) print one line and exit non-zero; they never show a
traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from importlib.metadata import version
from typing import Any

from automnist.cli.commands import EXIT_USAGE, HANDLERS
from automnist.cli.outputs import RUN_COMMANDS, refresh_index
from automnist.cli.parser import build_parser
from automnist.logs import configure_output
from automnist.errors import AutomnistError, DataError, SpecError, StoreError, one_line
from automnist.runs import check_run_name
from automnist.store import use_store

__all__ = ["main", "build_parser"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input, 130 interrupted).

    Bad input (a :class:`SpecError`, :class:`DataError` or :class:`StoreError`: an invalid
    spec, unreadable data, a bad or unknown run name, an unusable store) prints one line and
    returns 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_output(verbose=args.verbose)  # before any subcommand imports TensorFlow
    if args.version:
        print(f"automnist {version('automnist')}")
        return 0
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    previous = _interrupt_on_sigterm()
    try:
        if getattr(args, "run_name", None) is not None and not getattr(args, "resume", False):
            check_run_name(args.run_name)  # before any data is loaded or run created
        with use_store(getattr(args, "store", None)):  # --store: every Store.at() of the command opens it
            return HANDLERS[args.command](args)
    except (SpecError, DataError, StoreError) as exc:  # bad input: a spec, data, a run name, a store
        print(f"automnist: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except AutomnistError as exc:
        print(f"automnist: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("automnist: interrupted; finished trials are in the store (continue with --resume)", file=sys.stderr)
        return 130
    finally:
        if args.command in RUN_COMMANDS:  # results/index.html: one row per run, rewritten when a run ends
            with use_store(getattr(args, "store", None)):
                refresh_index(args.results)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt_on_sigterm() -> Any:
    """Make SIGTERM (``kill``, ``timeout``, a CI job limit) end a command like Ctrl-C: the run
    is marked interrupted and keeps its finished trials.  Returns the previous handler
    (None when not in the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)
