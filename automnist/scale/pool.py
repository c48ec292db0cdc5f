"""``automnist search SPEC --workers N`` on one machine: the parent starts the chief (Keras
Tuner's oracle on 127.0.0.1 and a free port) and ``N`` workers as ``automnist chief`` /
``automnist worker`` processes, each worker with ``cores // N`` TensorFlow threads, and
watches them: one progress bar fed from the shared store, every child stopped on Ctrl-C or
SIGTERM (the run is then ``interrupted``, its finished trials kept).

A worker that dies loses only the trial it was training: the others go on until the
oracle has handed out every trial, then the chief is stopped and the run is
``interrupted``; ``--resume`` hands the lost trial out again.

With ``strategy: auto`` the chief serves no oracle: the parent prepares an optuna study the
workers share (:func:`automnist.strategies.auto_workers.prepare_study`), the workers ask it
for trials, and the chief waits for them, then makes the final model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automnist.errors import SpecError, StoreError
from automnist.progress import SearchProgress
from automnist.records import best_trial
from automnist.runs import SearchResult, default_run_name, run_dir
from automnist.spec import SearchSpec
from automnist.store import Store

__all__ = ["PoolOutcome", "free_port", "worker_threads", "run_pool", "search_with_workers", "DISTRIBUTED_STRATEGIES"]

#: Strategies whose trials Keras Tuner's chief hands out to workers, and ``auto``, whose workers
#: share one optuna study (:mod:`automnist.strategies.auto_workers`).
DISTRIBUTED_STRATEGIES = ("random", "bayesian", "hyperband", "grid", "auto")

#: Seconds a child gets to end after SIGTERM before it is killed.
STOP_GRACE = 30.0


@dataclass
class PoolOutcome:
    """How the chief and each worker ended: exit codes and their logs' last lines."""

    codes: dict[str, int] = field(default_factory=dict)
    last_lines: dict[str, str] = field(default_factory=dict)
    logs: Path | None = None
    #: Workers stopped because the chief had ended the run before they asked for a trial.
    not_needed: set[str] = field(default_factory=set)

    @property
    def failed(self) -> list[str]:
        """The processes that did not end with exit code 0 (the workers not needed aside)."""
        return [name for name, code in self.codes.items() if code != 0 and name not in self.not_needed]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS says is free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def worker_threads(n_workers: int, cores: int | None = None) -> int:
    """Each worker's share of the machine's cores (at least 1)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, n_workers))


def search_with_workers(spec: SearchSpec, spec_path: str, n_workers: int, shared_args: Sequence[str], *,
                        results_dir: str | Path, run: str | None = None, resume: bool = False,
                        progress: bool = True) -> tuple[SearchResult, PoolOutcome]:
    """Run ``spec`` (loaded from ``spec_path`` with the overrides ``shared_args``) with a chief
    and ``n_workers`` workers on this machine; the run as the store has it, and how each
    process ended.

    Raises
    ------
    SpecError
        If ``n_workers`` < 1, the strategy is not a Keras Tuner one or auto, nothing is searched, or
        the chief rejects the spec or options.
    StoreError
        If the chief cannot start or resume the run (its one-line message).
    """
    if n_workers < 1:
        raise SpecError("", "--workers", f"must be an integer >= 1, got {n_workers}")
    if spec.search.strategy not in DISTRIBUTED_STRATEGIES:
        raise SpecError("", "--workers", f"needs strategy {', '.join(DISTRIBUTED_STRATEGIES)}, "
                                         f"got {spec.search.strategy!r}")
    if not spec.tunable:
        raise SpecError(spec.source, "params", "--workers needs at least one searched hyperparameter, got none")
    run = run or default_run_name(spec)
    directory = run_dir(results_dir, run)
    budget = spec.search.time_budget
    deadline = None if budget is None else time.time() + float(budget)
    with Store.at(results_dir) as store:
        if spec.search.strategy == "auto" and (store.get_run(run) is not None) == resume:  # else the chief says why
            from automnist.strategies.auto_workers import prepare_study

            prepare_study(spec, run, directory, store, resume=resume, deadline=deadline)
        outcome = run_pool(spec_path, n_workers, run, shared_args, store=store, logs=directory / "logs",
                           objective=spec.objective.name, direction=spec.objective.direction,
                           total=spec.search.max_trials, progress=progress, resume=resume, deadline=deadline)
        found = store.get_run(run)
        trials = store.get_trials(run) if found is not None else []
    if outcome.failed and not trials:  # nothing ran: the first error a process gave is the reason
        errors = [(name, line) for name, line in outcome.last_lines.items() if line.startswith("automnist: error: ")]
        name, line = (errors or [(outcome.failed[0], "")])[0]
        line = line.removeprefix("automnist: error: ") or (
            f"{name} ended with exit code {outcome.codes[name]}; see {outcome.logs / (name + '.log')}")
        raise SpecError("", "", line) if outcome.codes[name] == 2 else StoreError(line)
    config = (found or {}).get("config") or {}
    duration = ((found or {}).get("ended_at") or time.time()) - ((found or {}).get("started_at") or time.time())
    best = best_trial(trials, spec.objective.name, spec.objective.direction)
    return SearchResult(run, spec, trials, best, directory, max(0.0, duration), config.get("final") or {}), outcome


def run_pool(
    spec_path: str,
    n_workers: int,
    run: str,
    child_args: Sequence[str],
    *,
    store: Store,
    logs: Path,
    objective: str,
    direction: str,
    total: int | None = None,
    deadline: float | None = None,
    progress: bool = True,
    resume: bool = False,
) -> PoolOutcome:
    """Run the chief and ``n_workers`` workers of run ``run`` to their end.

    Parameters
    ----------
    spec_path : str
        The spec file every process loads.
    child_args : sequence of str
        Options every child gets (overrides, ``--results``, ``--store``).
    store : Store
        The shared store, read for the progress bar.
    logs : Path
        Folder for ``chief.log`` and ``tuner<i>.log`` (each child's output).

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C or SIGTERM, after every child has been stopped.
    """
    logs.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    common = [*child_args, "--run-name", run, "--quiet"]
    cmds = {"chief": ["chief", spec_path, "--bind", address, *common, "--no-report", *(["--resume"] if resume else [])]}
    threads = worker_threads(n_workers)
    for i in range(n_workers):
        cmds[f"tuner{i}"] = ["worker", spec_path, "--chief", address, "--tuner-id", f"tuner{i}",
                             "--threads", str(threads), *common]
    procs: dict[str, subprocess.Popen] = {}
    outcome = PoolOutcome(logs=logs)
    try:
        for name, cmd in cmds.items():
            with open(logs / f"{name}.log", "w", encoding="utf-8") as log:
                procs[name] = subprocess.Popen([sys.executable, "-m", "automnist", *cmd], stdout=log,
                                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        with SearchProgress.start(progress, run, total=total, deadline=deadline, objective=objective) as bar:
            outcome.not_needed = _watch(procs, store, run, bar, objective, direction)
    except BaseException:
        _stop(procs.values())
        _mark_interrupted(store, run)
        raise
    finally:
        for name, proc in procs.items():
            if proc.returncode is not None:
                outcome.codes[name] = proc.returncode
                outcome.last_lines[name] = _last_line(logs / f"{name}.log")
    _mark_interrupted(store, run)  # a chief stopped before it could say so
    return outcome


def _watch(procs: dict[str, subprocess.Popen], store: Store, run: str, bar: SearchProgress | None,
           objective: str, direction: str) -> set[str]:
    """Wait for the chief and workers to end (stopping the rest when one side cannot go on);
    the workers stopped because the chief had finished the run without them."""
    chief = procs["chief"]
    workers = {name: p for name, p in procs.items() if name != "chief"}
    seen: set[str] = set()
    not_needed: set[str] = set()
    chief_done_at: float | None = None
    while True:
        time.sleep(0.5)
        _show(store, run, bar, seen, objective, direction)
        if chief.poll() is not None:
            if chief.returncode != 0:
                _stop(workers.values())
            chief_done_at = chief_done_at or time.time()
            if all(p.poll() is not None for p in workers.values()):
                break
            if time.time() - chief_done_at > 10:  # a worker that never reached the chief before it ended
                not_needed = {name for name, p in workers.items() if p.poll() is None}
                _stop(workers.values())
        elif all(p.poll() is not None for p in workers.values()) and any(p.returncode for p in workers.values()):
            _stop([chief])  # the dead workers' trials never end: the run is interrupted
    _show(store, run, bar, seen, objective, direction)
    return not_needed if chief.returncode == 0 else set()


def _show(store: Store, run: str, bar: SearchProgress | None, seen: set[str], objective: str,
          direction: str) -> None:
    if bar is None or store.get_run(run) is None:
        return
    trials = store.get_trials(run)
    best = best_trial(trials, objective, direction)
    value = best.objective(objective) if best is not None and best.status == "ok" else None
    for t in trials:
        if t.trial_id not in seen:
            seen.add(t.trial_id)
            bar.trial_done(value)


def _stop(procs: Sequence[subprocess.Popen] | object) -> None:
    """SIGTERM each running child (they end like Ctrl-C), SIGKILL those still running after the grace."""
    running = [p for p in procs if p.poll() is None]  # type: ignore[attr-defined]
    for p in running:
        p.send_signal(signal.SIGTERM)
    end = time.time() + STOP_GRACE
    for p in running:
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _mark_interrupted(store: Store, run: str) -> None:
    run_row = store.get_run(run)
    if run_row is not None and run_row["status"] == "running":
        store.set_status(run, "interrupted")


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line and not line.startswith(("WARNING", "I0000", "W0000", "E0000"))]
    errors = [line for line in lines if line.startswith("automnist:")]
    return (errors or lines or [""])[-1]
