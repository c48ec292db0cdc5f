"""``strategy: auto`` with ``automnist search SPEC --workers N``: one optuna study that the
``N`` worker processes share, each asking it for trials, training them through
:meth:`SearchContext.evaluate` and the store, and telling it how they ended.

* **Storage**: optuna's :class:`~optuna.storages.JournalStorage` on a
  :class:`~optuna.storages.journal.JournalFileBackend`, ``<results>/<run>/optuna.journal``.
  ``--workers`` runs its processes on one machine, and optuna recommends the journal file
  for several processes there: every change is one appended line under a file lock, with no
  database server and none of the "database is locked" errors SQLite gives several writers.
  It is kept apart from the results store on purpose: optuna's RDB tables (``trials``,
  ``studies``, ...) would collide with the store's own ``trials`` table in a shared
  PostgreSQL ``--store``, and a second SQLite file would still be written by several
  processes at once.
* **Prepared once, by the parent** (:func:`prepare_study`, before any process starts): the
  study is created (or loaded on ``--resume``), the portfolio enqueued (``skip_if_exists``),
  the shared deadline of a time budget set, and on resume every trial a dead process left
  ``RUNNING`` is settled: told from the store when its record was committed, else failed
  (marked ``lost``) and its configuration enqueued to be asked again.
* **Each worker** runs :func:`automnist.strategies.auto.run` on the shared study
  (:class:`SharedTrials`): trial ids are the study's trial numbers (``0000``, ...), unique
  across processes; ``max_trials`` counts the whole study's trials; the sampler's seed is
  derived from the spec's and the worker's id (workers do not propose the same points);
  the pruner (successive halving) reads every worker's intermediate values from the
  journal, so it prunes across workers.  A worker that stops (budget, ``max_trials``)
  marks the study stopped, and the others end after their current trial.
* **The chief** (:func:`wait_for_workers`) only waits until the study has no running
  trial and is stopped or full, then hands the stored trials to
  :func:`automnist.final.finish`: the final model is made once, after the search.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automnist.errors import StoreError
from automnist.records import TrialRecord
from automnist.scale.roles import CHIEF, current_role, stored_best
from automnist.spec import SearchSpec
from automnist.strategies import auto
from automnist.strategies.portfolio import starting_points

if TYPE_CHECKING:
    from automnist.context import SearchContext
    from automnist.store import Store

__all__ = ["run", "planned_trials", "JOURNAL", "trial_id", "journal_path", "open_study", "prepare_study",
           "counted", "worker_seed", "WORKER_ATTR", "SharedTrials", "wait_for_workers"]

#: The shared study's file in the run's directory.
JOURNAL = "optuna.journal"
#: User attributes: a trial that does not count (``lost`` with a dead process, or asked but ``unused``),
#: why the study stopped, and the time budget's end shared by every process.
DROPPED, STOPPED, DEADLINE = "automnist_dropped", "automnist_stopped", "automnist_deadline"
#: User attribute of a trial: the worker that asked for it.
WORKER_ATTR = "automnist_worker"

planned_trials = auto.planned_trials


#: A trial's id in the store: its number in the study, ``0007`` (as in one process).
trial_id = auto.trial_id_of


def journal_path(directory: str | Path) -> Path:
    return Path(directory) / JOURNAL


def open_study(spec: SearchSpec, run: str, directory: str | Path, *, seed: int | None = None) -> Any:
    """Run ``run``'s shared study (created when new) with ``strategy: auto``'s sampler and pruner."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal_path(directory))))
    return auto._study(spec, seed, study_name=run, storage=storage, load_if_exists=True)


def worker_seed(spec: SearchSpec, worker: str) -> int:
    """The sampler seed of worker ``worker``: the spec's seed, offset by a hash of the id."""
    return spec.search.seed + 1 + zlib.crc32(worker.encode()) % 1_000_003


def counted(trials: list[Any]) -> list[Any]:
    """The trials that count toward ``max_trials``: asked (not waiting) and not dropped."""
    from optuna.trial import TrialState

    return [t for t in trials if t.state != TrialState.WAITING and not t.user_attrs.get(DROPPED)]


def prepare_study(spec: SearchSpec, run: str, directory: str | Path, store: Store, *, resume: bool,
                  deadline: float | None) -> Any:
    """Create (or on ``resume`` settle) run ``run``'s shared study before any worker starts.

    Raises
    ------
    StoreError
        When resuming a run that has stored trials but no shared study (it was not started
        with ``--workers``).
    """
    import optuna
    from optuna.trial import TrialState

    path = journal_path(directory)
    if not resume:
        path.unlink(missing_ok=True)  # left by a deleted run of the same name
    path.parent.mkdir(parents=True, exist_ok=True)
    study = open_study(spec, run, directory)
    stored = {t.trial_id: t for t in store.get_trials(run)} if resume else {}
    trials = study.get_trials(deepcopy=False)
    if stored and not trials:
        raise StoreError(f"cannot resume run {run!r} with --workers: it was not started with --workers "
                         f"(no {path}); resume it without --workers")
    for point in starting_points(spec):  # the portfolio, once
        study.enqueue_trial(point, skip_if_exists=True)
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        live = optuna.trial.Trial(study, t._trial_id)
        record = stored.get(trial_id(t.number))
        if record is not None:  # committed, but its process died before telling the study
            auto._tell(study, live, record, spec.objective.name, replay=True)
            continue
        live.set_user_attr(DROPPED, "lost")  # lost with its process: asked again
        study.tell(live, state=TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params)
    study.set_user_attr(STOPPED, None)
    study.set_user_attr(DEADLINE, deadline)
    return study


def _shared_deadline(ctx: SearchContext, study: Any) -> None:
    shared = study.user_attrs.get(DEADLINE)
    if shared is not None:
        ctx.deadline = shared if ctx.deadline is None else min(ctx.deadline, float(shared))


@dataclass
class SharedTrials:
    """One worker's trials of the shared study, for :func:`automnist.strategies.auto.run`."""

    ctx: SearchContext
    study: Any
    worker: str
    pending: Any = None

    def numbers(self) -> Iterator[int]:
        """Ask the study for a trial (``pending``) and yield its number, until the study is
        stopped or full, or the time budget is spent."""
        while True:
            self._said()
            if self._stop_reason() is not None:
                return
            trial = self.study.ask()
            before = [t for t in counted(self.study.get_trials(deepcopy=False)) if t.number < trial.number]
            if len(before) >= self.ctx.spec.search.max_trials or self.study.user_attrs.get(STOPPED):
                self._drop(trial)  # another worker took the last trial, or stopped the study meanwhile
                return
            trial.set_user_attr(WORKER_ATTR, self.worker)
            self.pending = trial
            # every worker's trials: which is best (best.keras), which are fully trained candidates
            s = self.ctx.spec
            self.ctx.trials[:], self.ctx.best = stored_best(self.ctx.store, self.ctx.run, s.objective.name,
                                                             s.objective.direction)
            yield trial.number

    def end(self) -> None:
        """After the worker's loop: a trial asked but not trained is dropped; the study stops."""
        from optuna.trial import TrialState

        self._said()
        if self.pending is not None and self._state(self.pending) == TrialState.RUNNING:
            self._drop(self.pending)
        reason = self._stop_reason() or "budget"
        if not self.study.user_attrs.get(STOPPED):
            self.study.set_user_attr(STOPPED, f"{reason} ({self.worker})")

    def _said(self) -> None:
        """Print how the last trial ended (the pool's logs say which worker trained what)."""
        if self.pending is not None:
            record: TrialRecord | None = self.ctx.finished(trial_id(self.pending.number))
            if record is not None:
                print(f"{self.worker}: trial {record.trial_id} {record.status}", flush=True)
                self.pending = None

    def _stop_reason(self) -> str | None:
        if self.study.user_attrs.get(STOPPED):
            return str(self.study.user_attrs[STOPPED])
        if not self.ctx.time_left():
            return "time budget"
        if len(counted(self.study.get_trials(deepcopy=False))) >= self.ctx.spec.search.max_trials:
            return "max_trials"
        return None

    def _state(self, trial: Any) -> Any:
        return self.study._storage.get_trial(trial._trial_id).state

    def _drop(self, trial: Any) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr(DROPPED, "unused")
        self.study.tell(trial, state=TrialState.FAIL)
        if trial is self.pending:
            self.pending = None


def wait_for_workers(ctx: SearchContext, study: Any, *, poll: float = 1.0) -> None:
    """The chief: wait until no trial runs and the study is stopped or has its
    ``max_trials``; then every stored trial is the chief's (for the final model)."""
    from optuna.trial import TrialState

    while True:
        trials = study.get_trials(deepcopy=False)
        running = any(t.state == TrialState.RUNNING for t in trials)
        full = len(counted(trials)) >= ctx.spec.search.max_trials
        if not running and (full or study.user_attrs.get(STOPPED)):
            break
        time.sleep(poll)
    s = ctx.spec
    ctx.trials[:], ctx.best = stored_best(ctx.store, ctx.run, s.objective.name, s.objective.direction)


def run(ctx: SearchContext) -> None:
    """``strategy: auto`` in a process of ``--workers N``: the chief waits for the workers'
    trials (the final model follows in :func:`automnist.search.run_search`), a worker trains
    trials of the shared study; a process on its own runs :func:`automnist.strategies.auto.run`."""
    role = current_role()
    if role is None:
        auto.run(ctx)
        return
    if not journal_path(ctx.run_dir).is_file():  # a process started by hand, or on another machine
        raise StoreError(f"strategy auto's chief and workers share the study `automnist search --workers N` "
                         f"prepares, and there is none at {journal_path(ctx.run_dir)}; run the search with --workers N")
    if role.kind == CHIEF:
        study = open_study(ctx.spec, ctx.run, ctx.run_dir)
        _shared_deadline(ctx, study)
        wait_for_workers(ctx, study)
        return
    study = open_study(ctx.spec, ctx.run, ctx.run_dir, seed=worker_seed(ctx.spec, role.tuner_id))
    _shared_deadline(ctx, study)
    shared = SharedTrials(ctx, study, role.tuner_id)
    auto.run(ctx, shared)
    shared.end()
