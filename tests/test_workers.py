"""Scale-out with real processes: ``automnist search --workers N`` (a chief and N workers
over 127.0.0.1), a worker killed mid-search, ``--resume`` through ``automnist chief`` and
``automnist worker`` started as separate processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automnist.errors import SpecError
from automnist.scale.pool import free_port, worker_threads
from automnist.scale.roles import CHIEF, WORKER, current_role, enter_role, parse_address
from automnist.store import Store

ROOT = Path(__file__).parents[1]
DEMO = str(ROOT / "search_spaces" / "demo.yaml")
#: The demo space on 240 digits for one epoch: a trial takes a second or two.
TINY = ["--subset", "240", "--epochs", "1"]


def _automnist(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "automnist", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _trained_by(logs: Path) -> dict[str, list[str]]:
    """worker id -> the trial ids its log says it trained."""
    out: dict[str, list[str]] = {}
    for log in sorted(logs.glob("*.log")):
        for worker, trial in re.findall(r"^(tuner\S*): trial (\S+) \w+$", log.read_text(), re.M):
            out.setdefault(worker, []).append(trial)
    return out


def test_roles_come_from_keras_tuner_variables(monkeypatch):
    for var in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.setenv(var, "")  # recorded, so what enter_role sets is undone after the test
        monkeypatch.delenv(var)
    assert current_role() is None
    role = enter_role(WORKER, "127.0.0.1:7001", "tuner3")
    assert (role.kind, role.tuner_id, role.address) == (WORKER, "tuner3", "127.0.0.1:7001")
    assert current_role() == role
    assert enter_role(CHIEF, "0.0.0.0:7002").tuner_id == "chief" and current_role().kind == CHIEF
    assert parse_address("[::1]:80", "--chief") == ("::1", 80)
    for bad in ("7001", "host:", "host:99999", ":80"):
        with pytest.raises(SpecError, match="--chief: must be HOST:PORT"):
            parse_address(bad, "--chief")
    with pytest.raises(SpecError, match="--tuner-id"):
        enter_role(WORKER, "127.0.0.1:7001", "chief2")
    assert worker_threads(2, cores=2) == 1 and worker_threads(3, cores=8) == 2 and worker_threads(4, cores=2) == 1
    assert 0 < free_port() < 65536


def test_workers_option_rejects_what_it_cannot_run(tmp_path, capsys):
    from automnist.cli import main

    assert main(["search", DEMO, "--workers", "0", "--results", str(tmp_path)]) == 2
    assert "--workers: must be an integer >= 1, got 0" in capsys.readouterr().err
    grid = str(ROOT / "search_spaces" / "seed004_mlp_grid.yaml")
    assert main(["search", grid, "--workers", "2", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs strategy random, bayesian, hyperband, grid" in err
    assert main(["search", str(ROOT / "search_spaces" / "seed001_small_cnn.yaml"), "--workers", "2",
                 "--results", str(tmp_path)]) == 2
    assert "--workers needs at least one searched hyperparameter" in capsys.readouterr().err
    assert not (tmp_path / "automnist.db").exists()  # rejected before any process started


def _pid_of(tuner_id: str, run_dir: Path) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in cmd and tuner_id.encode() in cmd and str(run_dir.parent).encode() in b" ".join(cmd):
                return int(entry.name)
    return None


@pytest.mark.serial
@pytest.mark.slow
def test_a_killed_worker_loses_no_trial_and_resume_completes_the_run(tmp_path):
    """Two workers share a search; one is SIGKILLed once both have trained trials; the other
    finishes; a chief and a worker started by hand resume it: 8 trials, each trained once."""
    proc = _automnist("search", DEMO, "--workers", "2", "--max-trials", "8", *TINY, "--results", str(tmp_path),
                      "--run-name", "k", "--quiet", "--no-report")
    run_dir = tmp_path / "k"
    end = time.time() + 400
    while time.time() < end and len(_trained_by(run_dir / "logs")) < 2 and proc.poll() is None:
        time.sleep(0.2)
    victim = _pid_of("tuner1", run_dir)
    assert victim is not None, proc.communicate()
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, (out, err)
    assert "tuner1 ended with exit code -9" in err and "--run-name k --resume" in err
    with Store.at(tmp_path) as store:
        kept = {t.trial_id: t for t in store.get_trials("k")}
        assert store.get_run("k")["status"] == "interrupted"
    before = _trained_by(run_dir / "logs")
    assert set(before) == {"tuner0", "tuner1"}, before  # both processes trained trials
    assert sorted(before["tuner0"] + before["tuner1"]) == sorted(kept)  # each once, none lost

    # resume with a chief and a worker started as separate processes, talking over 127.0.0.1
    address = f"127.0.0.1:{free_port()}"
    common = [*TINY, "--max-trials", "8", "--run-name", "k", "--results", str(tmp_path)]
    chief = _automnist("chief", DEMO, "--bind", address, "--resume", "--no-report", *common)
    worker = _automnist("worker", DEMO, "--chief", address, "--tuner-id", "late", "--threads", "1", *common)
    w_out, w_err = worker.communicate(timeout=600)
    c_out, c_err = chief.communicate(timeout=120)
    assert worker.returncode == 0 and chief.returncode == 0, (w_err, c_err)
    assert "run k: 8 trials" in c_out and "worker late: run k has 8 trials" in w_out
    with Store.at(tmp_path) as store:
        trials = store.get_trials("k")
        assert store.get_run("k")["status"] == "finished"
    assert sorted(t.trial_id for t in trials) == [str(i) for i in range(8)]
    for t in trials:  # the trials finished before the kill were kept, not trained again
        if t.trial_id in kept:
            old = kept[t.trial_id]
            assert (t.duration_s, t.metrics["val_accuracy"]) == (old.duration_s, old.metrics["val_accuracy"])
    late = re.findall(r"^late: trial (\S+) (?:ok|failed|infeasible)$", w_out, re.M)
    assert sorted(late) == sorted(set(str(i) for i in range(8)) - set(kept))
    assert (run_dir / "best.keras").is_file()


@pytest.mark.serial
@pytest.mark.slow
def test_sigterm_then_resume_with_two_workers_on_a_postgresql_store(tmp_path, pg_url):
    """``--workers 2 --store postgresql://...`` against the suite's real server: SIGTERM to the
    parent stops every child and leaves the run interrupted with its trials; ``--workers 2
    --resume`` completes it, every trial trained once; the logs stay in the results folder."""
    args = ["search", DEMO, "--workers", "2", "--max-trials", "6", *TINY, "--results", str(tmp_path),
            "--store", pg_url, "--run-name", "pg", "--quiet", "--no-report"]
    proc = _automnist(*args)
    end = time.time() + 300
    while time.time() < end and proc.poll() is None and not _trained_by(tmp_path / "pg" / "logs"):
        time.sleep(0.2)
    children = [pid for pid in (_pid_of("tuner0", tmp_path / "pg"), _pid_of("tuner1", tmp_path / "pg")) if pid]
    assert children, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1].startswith("automnist: interrupted")
    for pid in children:  # every worker has ended
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    with Store(pg_url) as store:
        assert store.get_run("pg")["status"] == "interrupted"
        kept = {t.trial_id: t for t in store.get_trials("pg")}
    assert 1 <= len(kept) < 6 and all(t.status == "ok" for t in kept.values())
    first = _trained_by(tmp_path / "pg" / "logs")

    proc = _automnist(*args, "--resume")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (out, err)
    assert "run pg: 6 trials" in out and "6 trials from 2 worker processes" in out
    assert not (tmp_path / "automnist.db").exists()  # the store is PostgreSQL
    with Store(pg_url) as store:
        trials = store.get_trials("pg")
        assert store.get_run("pg")["status"] == "finished"
    assert sorted(t.trial_id for t in trials) == [str(i) for i in range(6)]
    for t in trials:
        if t.trial_id in kept:
            assert t.duration_s == kept[t.trial_id].duration_s
    second = _trained_by(tmp_path / "pg" / "logs")  # the resumed run's logs (the first run's were replaced)
    ids = [t for ts in first.values() for t in ts] + [t for ts in second.values() for t in ts]
    assert len(ids) == len(set(ids))  # no trial trained twice
    assert sorted(set(ids) | set(kept)) == [str(i) for i in range(6)]  # (a trial stored as SIGTERM came is kept)


# -- strategy: auto with --workers: one optuna study shared through a journal file


def test_shared_auto_study_settles_what_a_dead_process_left_running(tmp_path):
    """No processes: the parent's preparation of the shared study.  A trial left RUNNING whose
    record is in the store is told from it; one not in the store is failed (it does not count)
    and its configuration enqueued again; the portfolio is enqueued once."""
    from optuna.trial import TrialState

    from automnist.records import TrialRecord
    from automnist.spec import load_spec
    from automnist.strategies.auto_workers import (DROPPED, counted, open_study, prepare_study, trial_id,
                                                   worker_seed)

    spec = load_spec(DEMO).replace(strategy="auto", max_trials=6, epochs=2)
    assert trial_id(7) == "0007" and worker_seed(spec, "tuner0") != worker_seed(spec, "tuner1")
    with Store.at(tmp_path) as store:
        store.create_run("r", spec_hash=spec.hash, strategy="auto")
        study = prepare_study(spec, "r", tmp_path / "r", store, resume=False, deadline=None)
        portfolio = [t.params for t in study.get_trials(states=(TrialState.WAITING,))]
        assert portfolio and (tmp_path / "r" / "optuna.journal").is_file()
        # two processes ask two trials; one commits its record and dies before telling the study
        other = open_study(spec, "r", tmp_path / "r", seed=worker_seed(spec, "tuner1"))
        first, second = other.ask(), other.ask()
        first.suggest_float("dropout", 0.0, 0.5)
        second.suggest_float("dropout", 0.0, 0.5)
        assert (first.number, second.number) == (0, 1)
        history = [{"fold": 0, "epoch": e, "metric": "val_accuracy", "value": v} for e, v in ((1, 0.5), (2, 0.75))]
        store.add_trial("r", TrialRecord("0000", 0, dict(first.params), metrics={"val_accuracy": 0.75},
                                         history=history, epochs=2, max_epochs=2))
        resumed = prepare_study(spec, "r", tmp_path / "r", store, resume=True, deadline=123.0)
    trials = resumed.get_trials()
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == 0.75
    assert trials[0].intermediate_values == {1: 0.5, 2: 0.75}
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs[DROPPED] == "lost"
    again = [t for t in trials if t.state == TrialState.WAITING and t.system_attrs.get("fixed_params")]
    assert again[-1].system_attrs["fixed_params"] == second.params  # the lost configuration, asked again
    assert len(again) == len(portfolio) - 2 + 1  # the portfolio was not enqueued twice
    assert [t.number for t in counted(trials)] == [0]
    assert resumed.user_attrs["automnist_deadline"] == 123.0


def test_resuming_a_run_not_started_with_workers_is_a_clear_error(tmp_path):
    from automnist.errors import StoreError
    from automnist.records import TrialRecord
    from automnist.spec import load_spec
    from automnist.strategies.auto_workers import prepare_study

    spec = load_spec(DEMO).replace(strategy="auto")
    with Store.at(tmp_path) as store:
        store.create_run("solo", spec_hash=spec.hash, strategy="auto")
        store.add_trial("solo", TrialRecord("0000", 0, {"dropout": 0.1}, metrics={"val_accuracy": 0.5}))
        with pytest.raises(StoreError, match="cannot resume run 'solo' with --workers: it was not started with"):
            prepare_study(spec, "solo", tmp_path / "solo", store, resume=True, deadline=None)


def _auto_trials(run_dir: Path) -> dict[int, object]:
    from automnist.spec import load_spec
    from automnist.strategies.auto_workers import open_study

    study = open_study(load_spec(DEMO).replace(strategy="auto"), run_dir.name, run_dir)
    return {t.number: t for t in study.get_trials(deepcopy=False)}


#: strategy auto on 240 digits for two epochs (a rung at epoch 1 to prune at), 6 trials
AUTO = ["--strategy", "auto", "--subset", "240", "--epochs", "2", "--max-trials", "6"]


@pytest.mark.serial
@pytest.mark.slow
def test_auto_strategy_with_two_workers_shares_one_study(tmp_path):
    proc = _automnist("search", DEMO, "--workers", "2", *AUTO, "--results", str(tmp_path), "--run-name", "a",
                      "--quiet", "--no-report")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    assert "run a: 6 trials" in out and "6 trials from 2 worker processes" in out
    with Store.at(tmp_path) as store:
        trials = store.get_trials("a")
        run = store.get_run("a")
    assert run["status"] == "finished"
    ids = [t.trial_id for t in trials]
    assert sorted(ids) == [f"{i:04d}" for i in range(6)]  # the study's trial numbers, each stored once
    trained = _trained_by(tmp_path / "a" / "logs")
    assert set(trained) == {"tuner0", "tuner1"}, trained  # both processes trained trials
    assert sorted(trained["tuner0"] + trained["tuner1"]) == sorted(ids)
    study = _auto_trials(tmp_path / "a")
    for t in trials:  # the study knows each trial as its worker told it
        assert study[int(t.trial_id)].user_attrs["automnist_worker"] in trained
        assert t.trial_id in trained[study[int(t.trial_id)].user_attrs["automnist_worker"]]
    assert any(t.status == "ok" and t.fully_trained for t in trials)
    assert (tmp_path / "a" / "best.keras").is_file()
    final = run["config"]["final"]  # made once, by the chief, after the workers
    assert final["refit"]["trial_id"] in ids and "refit of trial" in out


@pytest.mark.serial
@pytest.mark.slow
def test_auto_with_workers_resumes_after_a_worker_is_killed(tmp_path):
    """tuner1 is SIGKILLed while it trains a trial of the shared study: the run ends
    interrupted; ``--resume`` fails the lost trial, asks its configuration again under a new
    id, and does not train the stored trials again."""
    from optuna.trial import TrialState

    args = ["search", DEMO, "--workers", "2", *AUTO, "--results", str(tmp_path), "--run-name", "k", "--quiet",
            "--no-report"]
    proc = _automnist(*args)
    run_dir = tmp_path / "k"
    end = time.time() + 240
    victim = None
    while time.time() < end and proc.poll() is None and victim is None:
        time.sleep(0.3)
        if "tuner1" in _trained_by(run_dir / "logs") and (run_dir / "optuna.journal").is_file():
            running = [t for t in _auto_trials(run_dir).values() if t.state == TrialState.RUNNING
                       and t.user_attrs.get("automnist_worker") == "tuner1"]
            victim = _pid_of("tuner1", run_dir) if running else None
    assert victim is not None, proc.communicate()
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (out, err)
    assert "tuner1 ended with exit code -9" in err and "--run-name k --resume" in err
    lost = [t for t in _auto_trials(run_dir).values() if t.state == TrialState.RUNNING]
    assert len(lost) == 1
    with Store.at(tmp_path) as store:
        kept = {t.trial_id: t for t in store.get_trials("k")}
        assert store.get_run("k")["status"] == "interrupted"
    assert f"{lost[0].number:04d}" not in kept and len(kept) == 5

    proc = _automnist(*args, "--resume")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    assert "run k: 6 trials" in out
    with Store.at(tmp_path) as store:
        trials = {t.trial_id: t for t in store.get_trials("k")}
        assert store.get_run("k")["status"] == "finished"
    assert len(trials) == 6 and set(kept) < set(trials)
    for tid, old in kept.items():  # kept, not trained again
        assert trials[tid].duration_s == old.duration_s
    (new,) = set(trials) - set(kept)
    study = _auto_trials(run_dir)
    # the lost one, asked again: what it had drawn is kept (a kill can land while it was still
    # drawing its parameters; the rest are then drawn anew)
    assert int(new) > lost[0].number and lost[0].params.items() <= study[int(new)].params.items()
    assert {"learning_rate", "batch_size"} <= set(study[int(new)].params)
    assert study[lost[0].number].state == TrialState.FAIL
    assert (run_dir / "best.keras").is_file()


def test_an_auto_worker_started_by_hand_needs_the_prepared_study(tmp_path, capsys, monkeypatch):
    from automnist.cli import main

    for var in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.setenv(var, "")  # so the chief's own values are undone after the test
        monkeypatch.delenv(var)
    assert main(["chief", DEMO, "--bind", f"127.0.0.1:{free_port()}", "--strategy", "auto", *TINY,
                 "--run-name", "hand", "--results", str(tmp_path), "--quiet", "--no-report"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "share the study `automnist search --workers N` prepares" in err
