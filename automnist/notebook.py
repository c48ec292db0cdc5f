"""The results in a notebook: ``automnist.Results("results")`` gives the runs and trials
as the tidy pandas frames the reports are made from, and a run's report displayed inline
in Jupyter.

>>> from automnist import Results
>>> results = Results("results")
>>> results.runs()                    # one row per run (as in results/index.html)
>>> results.trials("demo")            # one row per trial: param_*, metrics, status, ...
>>> results.report("demo")            # the HTML report, shown inline
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from automnist.store import Store

__all__ = ["Report", "Results"]


@dataclass(frozen=True)
class Report:
    """A run's written HTML report; Jupyter shows it inline (in a sandboxed frame, so its
    styles stay out of the notebook and its table sorter still works)."""

    path: Path
    html: str
    height: int = 800

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'style="width: 100%; height: {self.height}px; border: 1px solid #d8dee4;" '
                f'title="{html.escape(self.path.as_posix())}"></iframe>')

    def __str__(self) -> str:
        return str(self.path)


class Results:
    """The runs of a results directory (its ``automnist.db``).

    Parameters
    ----------
    path : str or path
        The results directory, as ``--results`` (default ``results``).

    Raises
    ------
    StoreError
        When ``path`` holds no store.
    """

    def __init__(self, path: str | Path = "results") -> None:
        self.path = Path(path)
        with self._store():
            pass

    def _store(self) -> Store:
        return Store.at(self.path, create=False)

    def __repr__(self) -> str:
        return f"Results({str(self.path)!r})"

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first: kind, strategy, data set, status, trial counts,
        best score, its test accuracy, duration, start time and report path
        (:func:`automnist.report.index.index_frame`)."""
        from automnist.report.index import index_frame

        with self._store() as store:
            frame = index_frame(store, self.path)
        frame = frame.copy()
        frame["started_at"] = pd.to_datetime(frame["started_at"], unit="s", utc=True)
        return frame.reset_index(drop=True)

    def trials(self, run: str) -> pd.DataFrame:
        """One row per trial of ``run`` (``param_*``, metrics, status, error, duration, ...)."""
        with self._store() as store:
            store.require_run(run)
            return store.trials_frame(run)

    def history(self, run: str) -> pd.DataFrame:
        """One row per trial, fold, epoch and metric of ``run``."""
        with self._store() as store:
            store.require_run(run)
            return store.history_frame(run)

    def leaderboard(self, run: str) -> pd.DataFrame:
        """``run``'s trials ranked as in its report (best first)."""
        from automnist.aggregate import leaderboard
        from automnist.report.describe import ensure_columns, objective_of

        with self._store() as store:
            objective, direction = objective_of(store.require_run(run))
            trials = store.trials_frame(run)
        return leaderboard(ensure_columns(trials, objective), objective, direction)

    def report(self, run: str, fresh: bool = True) -> Report:
        """``run``'s report (``<path>/<run>/report.html``), for display.

        ``fresh``: write it again from the store (a few seconds); else show the one on disk
        when there is one.
        """
        from automnist.report import write_report
        from automnist.runs import run_dir

        out = run_dir(self.path, run) / "report.html"
        if fresh or not out.is_file():
            with self._store() as store:
                out = write_report(store, [run], results_dir=self.path)
        return Report(out, out.read_text(encoding="utf-8"))
