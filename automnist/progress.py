"""The progress bar of a search.

Without a time budget it counts trials (``7/20 trials``).  With one it shows elapsed
time against the budget (``3:12/10:00``) and the trials done, never a trial count the
budget will not reach; the best score so far is shown either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SearchProgress"]


class SearchProgress:
    """A tqdm bar fed by :class:`automnist.context.SearchContext` after every trial."""

    def __init__(self, bar: Any, *, deadline: float | None, objective: str) -> None:
        self.bar = bar
        self.deadline = deadline
        self.objective = objective
        self.trials = 0
        self._start = time.time()

    @classmethod
    @contextmanager
    def start(cls, enabled: bool, name: str, *, total: int | None, deadline: float | None,
              objective: str) -> Iterator[SearchProgress | None]:
        """A bar for run ``name`` (None when ``enabled`` is False), closed when the block ends."""
        if not enabled:
            yield None
            return
        from tqdm.auto import tqdm

        if deadline is None:
            bar = tqdm(total=total, desc=name, unit="trial", dynamic_ncols=True)
        else:
            budget = max(1, round(deadline - time.time()))
            bar = tqdm(total=budget, desc=name, unit="s", dynamic_ncols=True,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}/" + _clock(budget) + " {postfix}")
        progress = cls(bar, deadline=deadline, objective=objective)
        try:
            yield progress
        finally:
            bar.close()

    def trial_done(self, best: float | None, *, resumed: bool = False) -> None:
        """One more trial ended (or was taken from the store when ``resumed``)."""
        self.trials += 1
        if self.deadline is None:
            self.bar.update(1)
        else:
            self.bar.update(max(0, min(self.bar.total, round(time.time() - self._start)) - self.bar.n))
        text = f"best {self.objective}={best:.4f}" if best is not None else "no ok trial yet"
        if self.deadline is not None:
            text = f"{self.trials} trials, {text}"
        self.bar.set_postfix_str(text + (" (resumed)" if resumed else ""), refresh=True)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
