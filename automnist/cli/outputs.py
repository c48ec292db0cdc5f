"""What commands write besides their own output: the listeners of a search (live report,
TensorBoard), the runs index ``results/index.html``, ``report --all`` and the MLflow
export.  Heavy modules are imported inside the functions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from automnist.errors import AutomnistError
from automnist.store import Store

__all__ = ["RUN_COMMANDS", "export_mlflow", "final_report", "refresh_index", "report_all", "search_listeners"]

#: Subcommands that create (or continue) a run: the index is rewritten when they end.
RUN_COMMANDS = frozenset({"search", "demo", "cv", "lr-find", "compare-denoising", "chief"})


def search_listeners(args: argparse.Namespace) -> list[Any]:
    """The live report (unless ``--no-report``) and the TensorBoard writer (``--tensorboard``)."""
    from automnist.report.live import DEFAULT_EVERY_S, LiveReport

    listeners: list[Any] = []
    if not getattr(args, "no_report", False):
        every = getattr(args, "report_every", None)
        listeners.append(LiveReport(args.results, DEFAULT_EVERY_S if every is None else every))
    if getattr(args, "tensorboard", None):
        from automnist.bridges.tensorboard import TensorBoardWriter

        listeners.append(TensorBoardWriter(args.tensorboard))
    return listeners


def final_report(listeners: list[Any]) -> Path | None:
    """The final report a live report already wrote when the run ended, if any."""
    return next((x.final for x in listeners if getattr(x, "final", None) is not None), None)


def refresh_index(results: str | Path) -> Path | None:
    """Rewrite ``<results>/index.html``; a failure is one warning line, never the command's."""
    from automnist.report.index import write_index

    try:
        with Store.at(results, create=False) as store:
            return write_index(store, results)
    except AutomnistError:
        return None  # no store there (nothing ran)
    except Exception as exc:
        print(f"automnist: warning: {Path(results) / 'index.html'} not rewritten: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return None


def report_all(args: argparse.Namespace) -> int:
    """``automnist report --all``: every run's report, then the index."""
    from automnist.report import write_report

    with Store.at(args.results, create=False) as store:
        names = store.run_names()
        for name in names:
            print(f"report: {write_report(store, [name], results_dir=Path(args.results))}")
    print(f"index: {refresh_index(args.results)} ({len(names)} runs)")
    return 0


def export_mlflow(args: argparse.Namespace) -> int:
    """``automnist export RUN --to mlflow [--tracking-uri URI]``."""
    from automnist.bridges.mlflow import export_to_mlflow, require_mlflow

    require_mlflow()
    with Store.at(args.results, create=False) as store:
        done = export_to_mlflow(store, args.run, args.results, tracking_uri=args.tracking_uri)
    model = "; best model logged as an artifact" if done.model_logged else ""
    print(f"mlflow: experiment {done.experiment!r} (id {done.experiment_id}) at {done.tracking_uri}: "
          f"{done.logged} trials logged, {done.skipped} already there{model}")
    return 0
