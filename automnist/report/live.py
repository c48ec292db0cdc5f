"""The live report: during a search, ``<results>/<run>/report.html`` rewritten at most
every N seconds, marked as in progress (a banner; the page reloads itself), and
replaced by the final report when the run ends."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from automnist.report.render import write_report

if TYPE_CHECKING:
    from automnist.context import SearchContext
    from automnist.records import TrialRecord
    from automnist.store import Store

__all__ = ["DEFAULT_EVERY_S", "LiveReport"]

#: Seconds between two rewrites of a live report (``--report-every``).
DEFAULT_EVERY_S = 60.0


class LiveReport:
    """A :class:`~automnist.context.SearchListener` that keeps a run's report current.

    A trial's end rewrites the report when ``every_s`` seconds have passed since the
    search started or since the last rewrite (a search shorter than ``every_s`` costs no
    extra report); the run's end writes the final report (without the in-progress
    banner) when a live one was written, so an interrupted search leaves no page saying
    it is still running.

    Parameters
    ----------
    results_dir : path
        The results root (``<results_dir>/<run>/report.html``).
    every_s : float
        Least seconds between two rewrites (0: after every trial).
    """

    def __init__(self, results_dir: str | Path, every_s: float = DEFAULT_EVERY_S) -> None:
        if not every_s >= 0:
            raise ValueError(f"--report-every: must be a number of seconds >= 0, got {every_s!r}")
        self.results_dir = Path(results_dir)
        self.every_s = float(every_s)
        self.last = time.monotonic()
        self.writes = 0
        self.final: Path | None = None

    def trial_ended(self, ctx: SearchContext, record: TrialRecord) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        self._write(ctx.store, ctx.run, refresh_s=max(self.every_s, 5.0))

    def run_ended(self, store: Store, run: str) -> None:
        if self.writes:
            self.final = self._write(store, run, refresh_s=None)

    def _write(self, store: Store, run: str, refresh_s: float | None) -> Path | None:
        try:
            path = write_report(store, [run], results_dir=self.results_dir, refresh_s=refresh_s)
        except Exception as exc:  # a report that cannot be drawn must not stop the search
            warnings.warn(f"the live report of run {run!r} was not written: {type(exc).__name__}: {exc}",
                          RuntimeWarning, stacklevel=2)
            return None
        self.writes += 1
        return path
