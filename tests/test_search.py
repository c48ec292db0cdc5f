"""Searches end to end on tiny digits: each Keras Tuner strategy, resume, budgets."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automnist.errors import StoreError
from automnist.search import run_search
from automnist.spec import parse_spec
from automnist.store import Store

BASE = {
    "model": "cnn",
    "data": {"dataset": "digits", "subset": 300},
    "params": {
        "conv_layers": 1,
        "filters": 8,
        "padding": "same",
        "units": {"choice": [16, 32]},
        "learning_rate": {"choice": [0.003, 0.01]},
    },
    "search": {"max_trials": 3, "epochs": 2, "seed": 0},
}


def _spec(strategy: str, **search):
    raw = {**BASE, "name": f"tiny-{strategy}", "search": {**BASE["search"], "strategy": strategy, **search}}
    return parse_spec(raw)


@pytest.mark.parametrize("strategy", ["random", "bayesian", "grid", "hyperband"])
def test_each_keras_tuner_strategy_records_trials(strategy, results_dir):
    spec = _spec(strategy, max_trials=4 if strategy == "grid" else 3)
    result = run_search(spec, results_dir=results_dir, run_name=f"r-{strategy}", progress=False)
    with Store.at(results_dir) as store:
        frame = store.trials_frame(f"r-{strategy}")
        run = store.get_run(f"r-{strategy}")
    assert run["status"] == "finished" and run["strategy"] == strategy and run["spec_hash"] == spec.hash
    assert len(frame) == len(result.trials) >= 2
    assert (frame["status"] == "ok").all()
    assert frame["val_accuracy"].between(0, 1).all() and frame["test_accuracy"].notna().all()
    assert set(frame["param_units"]) <= {16, 32}
    if strategy == "grid":  # 2 x 2 grid, every combination once
        combos = set(zip(frame["param_units"], frame["param_learning_rate"]))
        assert combos == {(16, 0.003), (16, 0.01), (32, 0.003), (32, 0.01)}
    if strategy == "hyperband":  # Hyperband's budgets: trials of 1 and 2 epochs
        assert set(frame["epochs"]) <= {1, 2}
    # the best trial: the highest score among fully trained ones (a 1-epoch Hyperband trial is not)
    full = frame[frame["epochs"] >= frame["max_epochs"]]
    assert (frame["max_epochs"] == 2).all() and not full.empty
    best = result.best
    assert best is not None and best.fully_trained and best.metrics["val_accuracy"] == full["val_accuracy"].max()
    assert (result.run_dir / "best.keras").is_file() and (result.run_dir / "predictions.npz").is_file()


def test_kfold_cv_inside_keras_tuner_trials(results_dir):
    spec = _spec("random", cv=3, max_trials=2, epochs=1)
    run_search(spec, results_dir=results_dir, run_name="cv", progress=False)
    with Store.at(results_dir) as store:
        folds = store.folds_frame("cv")
        trials = store.trials_frame("cv")
    assert sorted(folds.groupby("trial_id").size().tolist()) == [3, 3]
    for _, row in trials.iterrows():
        scores = folds[folds.trial_id == row.trial_id]["val_accuracy"]
        assert row.val_accuracy == pytest.approx(scores.mean())
        assert row.val_accuracy_std == pytest.approx(scores.std(ddof=1))
        assert row.n_folds == 3
    # CV keeps no single model: the best configuration is refit and saved
    assert (results_dir / "cv" / "best.keras").is_file()


def test_infeasible_trials_are_recorded_and_the_search_goes_on(results_dir):
    raw = {**BASE, "name": "inf", "params": {"conv_layers": {"choice": [1, 3]}, "kernel_size": 5, "padding": "valid",
                                             "filters": 4, "units": 8},
           "search": {"strategy": "grid", "max_trials": 2, "epochs": 1}}
    result = run_search(parse_spec(raw), results_dir=results_dir, run_name="inf", progress=False)
    status = {t.params["conv_layers"]: t for t in result.trials}
    assert status[3].status == "infeasible" and "needs an input of at least 5x5" in status[3].error
    assert status[1].status == "ok"


@pytest.mark.serial
def test_time_budget_stops_starting_trials(results_dir):
    spec = _spec("random", max_trials=50, time_budget=1)
    result = run_search(spec, results_dir=results_dir, run_name="budget", progress=False)
    assert 1 <= len(result.trials) < 50


def test_run_name_conflicts_and_resume_checks(results_dir):
    spec = _spec("random", max_trials=1, epochs=1)
    run_search(spec, results_dir=results_dir, run_name="once", progress=False)
    with pytest.raises(StoreError, match="already exists; pass --resume"):
        run_search(spec, results_dir=results_dir, run_name="once", progress=False)
    with pytest.raises(StoreError, match="no run named 'nope'"):
        run_search(spec, results_dir=results_dir, run_name="nope", resume=True, progress=False)
    with pytest.raises(StoreError, match="different spec"):
        run_search(spec.replace(max_trials=2), results_dir=results_dir, run_name="once", resume=True, progress=False)
    # resuming a finished run trains nothing more
    again = run_search(spec, results_dir=results_dir, run_name="once", resume=True, progress=False)
    assert len(again.trials) == 1


KILL_SPEC = (
    "name: kill\nmodel: cnn\ndata: {dataset: digits, subset: 300}\n"
    "params: {conv_layers: 1, filters: 8, padding: same, units: {choice: [16, 32, 64]},"
    " learning_rate: {float: [0.001, 0.01], log: true}}\n"
    "search: {strategy: random, max_trials: 5, epochs: 3, seed: 0}\n"
)


def _search_until(tmp_path, trials: int, spec_text: str = KILL_SPEC
                  ) -> tuple[subprocess.Popen, list[str], dict[str, str], Path]:
    """Start `automnist search` in a subprocess and return once ``trials`` trials are committed."""
    spec_file = tmp_path / "kill.yaml"
    spec_file.write_text(spec_text)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "automnist", "search", str(spec_file), "--run-name", "k", "--results", str(results),
           "--quiet", "--no-report"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(tmp_path / "stderr.txt", "w") as err:  # a file, not a pipe: a full pipe would stall the search
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    db = results / "automnist.db"
    deadline = time.time() + 240
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as con:
                    n = con.execute("select count(*) from trials").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
        if n >= trials:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the search ended before it could be stopped"
    return proc, cmd, env, results


def _killed_after(tmp_path, trials: int) -> tuple[list[str], dict[str, str], Path]:
    """:func:`_search_until` ``trials`` trials, then SIGKILL: the command, its environment, the results folder."""
    proc, cmd, env, results = _search_until(tmp_path, trials)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return cmd, env, results


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted_and_keeps_finished_trials(tmp_path):
    proc, _, _, results = _search_until(tmp_path, 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    err = (tmp_path / "stderr.txt").read_text()
    assert "automnist: interrupted; finished trials are in the store (continue with --resume)" in err
    with Store.at(results) as store:
        run = store.get_run("k")
        trials = store.get_trials("k")
    assert run["status"] == "interrupted" and run["ended_at"] is not None
    assert len(trials) >= 1 and all(t.status == "ok" for t in trials)


@pytest.mark.slow
def test_sigkill_after_two_trials_then_resume_keeps_them(tmp_path):
    cmd, env, results = _killed_after(tmp_path, 2)
    with Store.at(results) as store:
        before = {t.trial_id: t for t in store.get_trials("k")}
        assert store.get_run("k")["status"] == "running"  # killed: never marked finished
    assert len(before) >= 2
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with Store.at(results) as store:
        after = store.get_trials("k")
        frame = store.trials_frame("k")
        assert store.get_run("k")["status"] == "finished"
    assert len(after) == 5 and frame["trial_id"].is_unique
    for tid, rec in before.items():  # the finished trials were kept, not retrained
        kept = next(t for t in after if t.trial_id == tid)
        assert kept.metrics == rec.metrics and kept.started_at == rec.started_at


ATOMIC_WRITER = """
import sys
from keras_tuner.src import utils
from automnist.strategies.keras_tuner import use_atomic_json
use_atomic_json()
path, i = sys.argv[1], 0
while True:
    utils.save_json(path, {"n": i, "pad": str(i % 10) * 1_000_000})
    i += 1
    if i == 1:
        print("written", flush=True)
"""


def test_keras_tuner_state_files_are_never_seen_half_written(tmp_path):
    """Keras Tuner empties trial.json / oracle.json, then writes them: a SIGKILL in between left an empty file.

    automnist's writer replaces them whole, so a reader polling the file while it is rewritten in a loop
    (with Keras Tuner's own writer, most such reads here find it empty or cut short) always finds a whole
    file, and so does the resume after the writer is killed.
    """
    import json

    path = tmp_path / "trial.json"
    proc = subprocess.Popen([sys.executable, "-c", ATOMIC_WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        seen, end = set(), time.time() + 1.5
        while time.time() < end:
            state = json.loads(path.read_text())
            assert state["pad"] == str(state["n"] % 10) * 1_000_000
            seen.add(state["n"])
        assert len(seen) > 5  # the file was rewritten while it was read
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = json.loads(path.read_text())
    assert state["pad"] == str(state["n"] % 10) * 1_000_000 and state["n"] >= max(seen)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")] == ["trial.json"]


@pytest.mark.slow
def test_resuming_a_run_whose_keras_tuner_file_was_cut_short_says_so_and_keeps_the_trials(tmp_path):
    """A run killed mid-write by an older automnist: the resume stops with one line, the store keeps its trials."""
    cmd, env, results = _killed_after(tmp_path, 1)
    with Store.at(results) as store:
        before = store.get_trials("k")
    torn = sorted((results / "k" / "tuner").glob("trial_*/trial.json"))[0]
    torn.write_text("")
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "Keras Tuner state file" in last and "cut short" in last and "start it again under a new name" in last
    assert "Traceback" not in done.stderr
    with Store.at(results) as store:
        assert [t.trial_id for t in store.get_trials("k")] == [t.trial_id for t in before]


def test_spec_hypermodel_drives_plain_keras_tuner(tmp_path, digits_arrays):
    import keras_tuner as kt

    from automnist.hypermodel import SpecHyperModel

    spec = parse_spec({**BASE, "name": "hm", "params": {**BASE["params"], "batch_size": {"choice": [16, 64]},
                                                          "epochs": {"choice": [1, 2]}}})
    xtr, ytr, _, _ = digits_arrays
    hm = SpecHyperModel(spec, input_shape=(8, 8, 1), n_classes=10)
    assert type(hm) is SpecHyperModel and isinstance(hm, kt.HyperModel)
    tuner = kt.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=str(tmp_path), project_name="p",
                            seed=1)
    tuner.search(xtr[:200], ytr[:200], verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    for t in trials:
        # the searched epochs were honoured by HyperModel.fit
        assert t.hyperparameters.get("epochs") in (1, 2)
        assert 0 <= t.metrics.get_last_value("val_accuracy") <= 1
