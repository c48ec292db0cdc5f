"""Tests for automnist.store: runs, trials, frames, several processes, crashes."""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from automnist.errors import StoreError
from automnist.records import TrialRecord
from automnist.store import BASE_METRICS, DB_NAME, SCHEMA_VERSION, Store

NAN = math.nan
INF = math.inf
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- helpers


def _exact(value: Any) -> Any:
    """A comparable form that tells 1 from 1.0 from True and treats NaN as equal to NaN."""
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [_exact(v) for v in value]]
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def _assert_same(got: list[TrialRecord], expected: list[TrialRecord]) -> None:
    assert [_exact(dataclasses.asdict(r)) for r in got] == [_exact(dataclasses.asdict(r)) for r in expected]


def _history(fold: int, losses: list[float], accs: list[float]) -> list[dict[str, Any]]:
    rows = [{"fold": fold, "epoch": e + 1, "metric": "loss", "value": v} for e, v in enumerate(losses)]
    rows += [{"fold": fold, "epoch": e + 1, "metric": "val_accuracy", "value": v} for e, v in enumerate(accs)]
    return rows


def _three_trials() -> list[TrialRecord]:
    """Two ok trials and a failed one, without CV."""
    return [
        TrialRecord(
            "t0", 0, {"units": 64, "dropout": 0.0, "filters": [32, 64], "batch_norm": False, "optimizer": "adam"},
            metrics={"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75,
                     "test_loss": 0.62, "test_accuracy": 0.74},
            history=_history(0, [0.9, 0.5], [0.6, 0.75]),
            duration_s=1.5, n_params=1234, seed=0, epochs=2, started_at=100.0, ended_at=101.5,
        ),
        TrialRecord(
            "t1", 1, {"units": 128, "dropout": 0.25, "filters": [64, 64], "batch_norm": True, "optimizer": "sgd",
                      "momentum": 0.9},
            metrics={"loss": 0.4, "accuracy": 0.85, "val_loss": 0.45, "val_accuracy": 0.8},
            history=_history(0, [0.8, 0.4], [0.7, 0.8]),
            duration_s=2.0, n_params=2345, seed=1, epochs=2, started_at=102.0, ended_at=104.0,
        ),
        TrialRecord(
            "t2", 2, {"units": 256, "dropout": 0.5, "filters": [32, 64], "batch_norm": False, "optimizer": "adam"},
            status="failed", error="ValueError: boom", duration_s=0.25, n_params=None, seed=2, epochs=0,
            started_at=105.0, ended_at=105.25,
        ),
    ]


def _cv_trials() -> list[TrialRecord]:
    """Two trials with 3-fold CV (one fold value NaN)."""
    out = []
    for i, (units, accs) in enumerate(((32, [0.7, 0.8, 0.9]), (64, [0.6, 0.65, 0.7]))):
        folds = [{"fold": f, "val_accuracy": a, "val_loss": 1.0 - a, "loss": 0.5 - a / 10} for f, a in enumerate(accs)]
        out.append(TrialRecord(
            f"cv{i}", i, {"units": units, "kernel_size": {"choice": 3} if i else 3},
            metrics={"val_accuracy": float(np.mean(accs)), "val_accuracy_std": float(np.std(accs, ddof=1)),
                     "val_loss": 1.0 - float(np.mean(accs))},
            folds=folds,
            history=[h for f in range(3) for h in _history(f, [1.0, 0.5], [0.5, accs[f]])],
            duration_s=3.0 + i, n_params=100 * (i + 1), seed=i, epochs=2, started_at=10.0 * i, ended_at=10.0 * i + 3,
        ))
    out[1].folds[2]["val_loss"] = NAN
    return out


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.at(tmp_path / "results") as s:
        yield s


# ---------------------------------------------------------------------- file and runs


def test_at_creates_the_file_with_wal_foreign_keys_and_schema_version(tmp_path: Path) -> None:
    with Store.at(tmp_path / "new" / "results") as s:
        assert s.path == tmp_path / "new" / "results" / DB_NAME
        assert s.path.is_file()
        db = s._connection.get()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"runs", "trials", "folds", "history", "rungs"}


#: The tables of a version 1 store, as automnist wrote them (before fidelity was recorded).
_V1_TABLES = """CREATE TABLE IF NOT EXISTS runs (
    run_id     INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    spec_name  TEXT    NOT NULL DEFAULT '',
    spec_text  TEXT    NOT NULL DEFAULT '',
    spec_hash  TEXT    NOT NULL DEFAULT '',
    strategy   TEXT    NOT NULL DEFAULT '',
    dataset    TEXT    NOT NULL DEFAULT '',
    seed       INTEGER NOT NULL DEFAULT 0,
    config     TEXT    NOT NULL DEFAULT '{}',
    versions   TEXT    NOT NULL DEFAULT '{}',
    status     TEXT    NOT NULL DEFAULT 'running'
               CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
    started_at REAL    NOT NULL,
    ended_at   REAL
);
CREATE TABLE IF NOT EXISTS trials (
    run_id     INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    trial_id   TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    params     TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('ok', 'failed', 'infeasible')),
    metrics    TEXT    NOT NULL,
    duration_s REAL    NOT NULL,
    n_params   INTEGER,
    seed       INTEGER NOT NULL,
    epochs     INTEGER NOT NULL,
    error      TEXT,
    started_at REAL    NOT NULL,
    ended_at   REAL    NOT NULL,
    PRIMARY KEY (run_id, trial_id)
);
CREATE INDEX IF NOT EXISTS trials_run_number ON trials (run_id, number);
CREATE TABLE IF NOT EXISTS folds (
    run_id   INTEGER NOT NULL,
    trial_id TEXT    NOT NULL,
    fold     INTEGER NOT NULL,
    metric   TEXT    NOT NULL,
    value    REAL,
    PRIMARY KEY (run_id, trial_id, fold, metric),
    FOREIGN KEY (run_id, trial_id) REFERENCES trials (run_id, trial_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    run_id   INTEGER NOT NULL,
    trial_id TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    fold     INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    metric   TEXT    NOT NULL,
    value    REAL,
    PRIMARY KEY (run_id, trial_id, seq),
    FOREIGN KEY (run_id, trial_id) REFERENCES trials (run_id, trial_id) ON DELETE CASCADE
) WITHOUT ROWID
"""


def test_version_1_store_is_migrated_with_its_trials_kept(tmp_path: Path) -> None:
    """A store written before fidelity was recorded (schema 1) opens, gains the new columns
    and the rungs table, and keeps its trials (read as fully trained)."""
    path = tmp_path / DB_NAME
    db = sqlite3.connect(path)
    db.executescript(_V1_TABLES + ";PRAGMA user_version = 1;")
    db.execute("INSERT INTO runs (name, kind, started_at) VALUES ('old', 'search', 1.0)")
    db.execute("INSERT INTO trials VALUES (1, '0', 0, '{\"units\": 8}', 'ok', '{\"val_accuracy\": 0.9}', 2.0, 10, 0, 3, NULL,"
               " 1.0, 3.0)")
    db.commit()
    db.close()
    with Store(path) as s:
        (old,) = s.get_trials("old")
        assert (old.params, old.metrics, old.epochs, old.max_epochs, old.rungs) == ({"units": 8}, {"val_accuracy": 0.9}, 3, 0, [])
        assert old.fully_trained
        s.add_trial("old", TrialRecord("1", 1, {"units": 16}, metrics={"val_accuracy": 0.8}, epochs=1, max_epochs=9,
                                       images=100, stop_reason="pruned",
                                       rungs=[{"rung": 0, "epochs": 1, "images": 100, "val_accuracy": 0.8}]))
        assert s.get_trials("old")[1].rungs == [{"rung": 0, "epochs": 1, "images": 100, "val_accuracy": 0.8}]
        assert s._connection.get().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_rungs_and_fidelity_round_trip_and_bad_ones_are_refused(store: Store) -> None:
    store.create_run("r", kind="search")
    rec = TrialRecord("7", 0, {"units": 8}, metrics={"val_accuracy": 0.7}, epochs=3, max_epochs=9, images=450,
                      stop_reason="pruned", rungs=[{"rung": 0, "epochs": 1, "images": 450, "val_accuracy": 0.5},
                                                   {"rung": 1, "epochs": 3, "images": 450, "val_accuracy": 0.7}])
    store.add_trial("r", rec)
    assert store.get_trials("r") == [rec]
    frame = store.trials_frame("r")
    assert frame.loc[0, ["epochs", "max_epochs", "images", "stop_reason"]].tolist() == [3, 9, 450, "pruned"]
    with pytest.raises(ValueError, match="stop_reason must be None or one of pruned, early_stopping, budget, got 'tired'"):
        store.add_trial("r", TrialRecord("8", 1, {}, stop_reason="tired"))
    with pytest.raises(ValueError, match=r"rungs\[1\]: rung 0 appears twice"):
        store.add_trial("r", TrialRecord("8", 1, {}, rungs=[{"rung": 0, "epochs": 1}, {"rung": 0, "epochs": 2}]))
    assert [t.trial_id for t in store.get_trials("r")] == ["7"]


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreError, match=r"schema version 7 .*newer automnist"):
        Store(path)


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="junk.db: cannot open the results store"):
        Store(path)


def test_create_get_and_finish_runs(store: Store) -> None:
    t0 = time.time()
    assert store.create_run("a", spec_name="cnn", spec_text="name: cnn\n", spec_hash="abc123", strategy="random",
                            dataset="digits", seed=7, config={"epochs": 2, "lr": [0.1, 0.01]},
                            versions={"keras": "3.15"}) == 1
    assert store.create_run("b", kind="cv") == 2
    run = store.get_run("a")
    started = run.pop("started_at")
    assert t0 <= started <= time.time()
    assert run == {"run_id": 1, "name": "a", "kind": "search", "spec_name": "cnn", "spec_text": "name: cnn\n",
                   "spec_hash": "abc123", "strategy": "random", "dataset": "digits", "seed": 7,
                   "config": {"epochs": 2, "lr": [0.1, 0.01]}, "versions": {"keras": "3.15"},
                   "status": "running", "ended_at": None}
    assert store.get_run("nope") is None
    assert store.run_names() == ["a", "b"]

    store.finish_run("a")
    finished = store.require_run("a")
    assert finished["status"] == "finished"
    assert started <= finished["ended_at"] <= time.time()
    store.finish_run("b", "interrupted")
    assert store.get_run("b")["status"] == "interrupted"
    store.set_status("b", "running")  # a resumed run
    assert (store.get_run("b")["status"], store.get_run("b")["ended_at"]) == ("running", None)


def test_duplicate_run_name_is_refused(store: Store) -> None:
    store.create_run("a")
    with pytest.raises(StoreError, match="a run named 'a' already exists"):
        store.create_run("a", kind="cv")
    assert store.run_names() == ["a"]


@pytest.mark.parametrize("name", ["", "   ", None, 3, ["a"]])
def test_run_name_must_be_a_non_empty_string(store: Store, name: Any) -> None:
    with pytest.raises(StoreError, match=r"run name: must be a non-empty string, got"):
        store.create_run(name)
    with pytest.raises(StoreError, match=r"run name: must be a non-empty string"):
        store.get_run(name)


def test_bad_kind_and_status_values_are_named(store: Store) -> None:
    with pytest.raises(ValueError, match="kind: must be one of search, cv, lr_find, sweep, denoise, got 'grid'"):
        store.create_run("a", kind="grid")
    store.create_run("a")
    with pytest.raises(ValueError, match="status: must be one of finished, interrupted, failed, got 'done'"):
        store.finish_run("a", "done")
    record = _three_trials()[0]
    record.status = "crashed"
    with pytest.raises(ValueError, match="trial 't0': status must be one of ok, failed, infeasible, got 'crashed'"):
        store.add_trial("a", record)
    assert store.get_trials("a") == []


def test_unknown_runs_name_themselves_and_the_known_runs(store: Store) -> None:
    with pytest.raises(StoreError, match="no run named 'x' in .*; known runs: none$"):
        store.require_run("x")
    store.create_run("a")
    store.create_run("b")
    known = "known runs: a, b$"
    with pytest.raises(StoreError, match=f"no run named 'x' in .*{known}"):
        store.require_run("x")
    with pytest.raises(StoreError, match=f"no run named 'x' .*{known}"):
        store.add_trial("x", _three_trials()[0])
    with pytest.raises(StoreError, match=f"no run named 'x' .*{known}"):
        store.get_trials("x")
    with pytest.raises(StoreError, match=f"no run named 'x' .*{known}"):
        store.finish_run("x")
    with pytest.raises(StoreError, match=f"no runs named 'x', 'y' .*{known}"):
        store.trials_frame(["a", "x", "y"])
    for frame in (store.folds_frame, store.history_frame):
        with pytest.raises(StoreError, match=f"no run named 'x' .*{known}"):
            frame("x")


# ---------------------------------------------------------------------- trials


def test_trials_round_trip_exactly(store: Store) -> None:
    store.create_run("a")
    params = {
        "units": 128, "learning_rate": 0.1 + 0.2, "tiny": 1e-300, "big": 2**53 + 1, "batch_norm": True,
        "nesterov": False, "epochs": None, "activation": "leaky_relu", "filters": [32, 64],
        "augmentation": {"rotation": 8, "zoom": 0.08, "nested": {"a": [1, 2.5, None, True]}},
    }
    record = TrialRecord(
        "0007", 1, params, metrics={"loss": 0.1234567890123, "val_loss": NAN, "val_accuracy": INF,
                                    "accuracy": -INF, "test_accuracy": 0.9, "epochs_run": 3},
        folds=[{"fold": 0, "val_accuracy": 0.5, "val_loss": NAN}, {"fold": 1, "val_accuracy": 0.25, "val_loss": 1.5}],
        history=_history(0, [1.0, NAN], [0.125, 0.5]) + _history(1, [2.0, 1.0], [0.25, 0.25]),
        duration_s=12.345, n_params=98765, seed=42, epochs=2, error=None, started_at=1.7e9, ended_at=1.7e9 + 12.345,
    )
    first = TrialRecord("0003", 0, {"units": 32}, status="infeasible", error="kernel 7 > input 4")
    store.add_trial("a", record)
    store.add_trial("a", first)  # added after, but number 0: comes first

    expected = dataclasses.replace(record, metrics={"loss": 0.1234567890123, "val_loss": NAN, "val_accuracy": NAN,
                                                    "accuracy": NAN, "test_accuracy": 0.9, "epochs_run": 3})
    _assert_same(store.get_trials("a"), [first, expected])
    got = store.get_trials("a")[1]
    assert got.params["learning_rate"] == 0.30000000000000004
    assert got.params["big"] == 9007199254740993
    assert math.isnan(got.metrics["val_accuracy"]) and math.isnan(got.history[1]["value"])


def test_numpy_values_are_stored_as_python_numbers(store: Store) -> None:
    store.create_run("a")
    store.add_trial("a", TrialRecord(
        "t", 0, {"units": np.int64(64), "lr": np.float32(0.5)},
        metrics={"val_accuracy": np.float32(0.75), "val_loss": np.float64("nan")},
        history=[{"fold": np.int64(0), "epoch": np.int32(1), "metric": "loss", "value": np.float32(0.25)}],
        n_params=np.int64(10), seed=np.int64(3),
    ))
    _assert_same(store.get_trials("a"), [TrialRecord(
        "t", 0, {"units": 64, "lr": 0.5}, metrics={"val_accuracy": 0.75, "val_loss": NAN},
        history=[{"fold": 0, "epoch": 1, "metric": "loss", "value": 0.25}], n_params=10, seed=3,
    )])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"history": [{"fold": 0, "epoch": 1, "value": 0.5}]}, r"history\[0\] must have exactly the keys"),
        ({"folds": [{"val_accuracy": 0.5}]}, r"folds\[0\] needs an integer 'fold' key"),
        ({"folds": [{"fold": 0, "a": 1.0}, {"fold": 0, "a": 2.0}]}, r"folds\[1\]: fold 0 appears twice"),
        ({"folds": [{"fold": 0, "val_accuracy": "high"}]}, r"folds\[0\].val_accuracy: must be a number, got 'high'"),
        ({"params": {"lr": NAN}}, r"trial 't0': params: must be JSON data"),
        ({"params": {"f": object()}}, r"trial 't0': params: must be JSON data"),
        ({"number": 1.5}, r"trial 't0': number: must be an integer, got 1.5"),
        ({"trial_id": 7}, r"trial_id: must be a non-empty string, got 7"),
    ],
)
def test_malformed_records_are_refused_and_store_nothing(store: Store, change: dict, message: str) -> None:
    store.create_run("a")
    with pytest.raises(ValueError, match=message):
        store.add_trial("a", dataclasses.replace(_three_trials()[0], **change))
    assert store.get_trials("a") == []


def test_re_adding_a_trial_replaces_it(store: Store) -> None:
    store.create_run("a")
    t0, t1, _ = _three_trials()
    store.add_trial("a", t0)
    store.add_trial("a", t1)
    redone = dataclasses.replace(t0, metrics={"val_accuracy": 0.9}, history=_history(0, [0.3], [0.9]),
                                 folds=[{"fold": 0, "val_accuracy": 0.9}])
    store.add_trial("a", redone)
    _assert_same(store.get_trials("a"), [redone, t1])
    db = store._connection.get()
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE trial_id = 't0'").fetchone()[0]
              for t in ("trials", "folds", "history")}
    assert counts == {"trials": 1, "folds": 1, "history": 2}
    assert list(store.trials_frame("a")["trial_id"]) == ["t0", "t1"]


def test_the_same_trial_id_in_two_runs_is_two_trials(store: Store) -> None:
    store.create_run("a")
    store.create_run("b")
    t0 = _three_trials()[0]
    store.add_trial("a", t0)
    store.add_trial("b", dataclasses.replace(t0, seed=9))
    assert [t.seed for t in store.get_trials("a")] == [0]
    assert [t.seed for t in store.get_trials("b")] == [9]


# ---------------------------------------------------------------------- frames


def test_trials_frame_without_cv(store: Store) -> None:
    store.create_run("a", strategy="random")
    for record in _three_trials():
        store.add_trial("a", record)
    frame = store.trials_frame("a")
    expected = pd.DataFrame({
        "run": ["a", "a", "a"],
        "strategy": ["random"] * 3,
        "trial_id": ["t0", "t1", "t2"],
        "number": np.array([0, 1, 2], dtype="int64"),
        "status": ["ok", "ok", "failed"],
        "param_units": np.array([64, 128, 256], dtype="int64"),
        "param_dropout": [0.0, 0.25, 0.5],
        "param_filters": ["32-64", "64-64", "32-64"],
        "param_batch_norm": [False, True, False],
        "param_optimizer": ["adam", "sgd", "adam"],
        "param_momentum": [NAN, 0.9, NAN],
        "loss": [0.5, 0.4, NAN],
        "accuracy": [0.8, 0.85, NAN],
        "val_loss": [0.6, 0.45, NAN],
        "val_accuracy": [0.75, 0.8, NAN],
        "test_loss": [0.62, NAN, NAN],
        "test_accuracy": [0.74, NAN, NAN],
        "n_folds": np.array([0, 0, 0], dtype="int64"),
        "duration_s": [1.5, 2.0, 0.25],
        "n_params": pd.array([1234, 2345, None], dtype="Int64"),
        "epochs": np.array([2, 2, 0], dtype="int64"),
        "max_epochs": np.array([0, 0, 0], dtype="int64"),
        "images": pd.array([None, None, None], dtype="Int64"),
        "stop_reason": [None, None, None],
        "seed": np.array([0, 1, 2], dtype="int64"),
        "error": [None, None, "ValueError: boom"],
        "started_at": [100.0, 102.0, 105.0],
        "ended_at": [101.5, 104.0, 105.25],
    })
    pd.testing.assert_frame_equal(frame, expected)


def test_frames_with_cv_folds(store: Store) -> None:
    store.create_run("cv", strategy="grid", kind="cv")
    for record in reversed(_cv_trials()):  # added out of order, read back by number
        store.add_trial("cv", record)

    trials = store.trials_frame(["cv"])
    assert list(trials.columns) == [
        "run", "strategy", "trial_id", "number", "status", "param_units", "param_kernel_size", *BASE_METRICS,
        "val_accuracy_std", "n_folds", "duration_s", "n_params", "epochs", "max_epochs", "images", "stop_reason", "seed", "error", "started_at",
        "ended_at",
    ]
    assert list(trials["param_kernel_size"]) == [3, "choice=3"]
    assert list(trials["n_folds"]) == [3, 3]
    assert trials["val_accuracy"].tolist() == pytest.approx([0.8, 0.65])
    assert trials["val_accuracy_std"].tolist() == pytest.approx([0.1, 0.05])
    assert trials["test_accuracy"].isna().all()

    folds = store.folds_frame("cv")
    expected = pd.DataFrame({
        "run": ["cv"] * 6,
        "trial_id": ["cv0"] * 3 + ["cv1"] * 3,
        "fold": np.array([0, 1, 2, 0, 1, 2], dtype="int64"),
        "loss": [0.5 - a / 10 for a in (0.7, 0.8, 0.9, 0.6, 0.65, 0.7)],
        "accuracy": [NAN] * 6,
        "val_loss": [1.0 - a for a in (0.7, 0.8, 0.9, 0.6, 0.65)] + [NAN],
        "val_accuracy": [0.7, 0.8, 0.9, 0.6, 0.65, 0.7],
        "test_loss": [NAN] * 6,
        "test_accuracy": [NAN] * 6,
    })
    pd.testing.assert_frame_equal(folds, expected)

    history = store.history_frame("cv")
    assert list(history.columns) == ["run", "trial_id", "fold", "epoch", "metric", "value"]
    assert len(history) == 2 * 3 * 4
    assert history.iloc[:4].to_dict("list") == {
        "run": ["cv"] * 4, "trial_id": ["cv0"] * 4, "fold": [0, 0, 0, 0], "epoch": [1, 2, 1, 2],
        "metric": ["loss", "loss", "val_accuracy", "val_accuracy"], "value": [1.0, 0.5, 0.5, 0.7],
    }
    assert list(history["trial_id"].unique()) == ["cv0", "cv1"]
    assert history.dtypes[["fold", "epoch", "value"]].tolist() == [np.dtype("int64")] * 2 + [np.dtype("float64")]


def test_trials_frame_of_several_runs_keeps_their_order_and_unions_params(store: Store) -> None:
    store.create_run("a", strategy="random")
    store.create_run("cv", strategy="grid")
    for record in _three_trials():
        store.add_trial("a", record)
    for record in _cv_trials():
        store.add_trial("cv", record)
    frame = store.trials_frame(["cv", "a", "cv"])
    assert list(zip(frame["run"], frame["trial_id"])) == [
        ("cv", "cv0"), ("cv", "cv1"), ("a", "t0"), ("a", "t1"), ("a", "t2"),
    ]
    assert list(frame["strategy"]) == ["grid", "grid", "random", "random", "random"]
    assert list(frame["n_folds"]) == [3, 3, 0, 0, 0]
    assert frame["param_units"].tolist() == [32, 64, 64, 128, 256]
    assert frame["param_units"].dtype == np.dtype("int64")
    assert frame["param_batch_norm"].dtype == "boolean"
    assert frame["param_batch_norm"].isna().tolist() == [True, True, False, False, False]
    assert len(store.folds_frame(["a", "cv"])) == 6  # run a has no folds
    assert list(store.history_frame(["a", "cv"])["run"].unique()) == ["a", "cv"]


def test_empty_run_gives_empty_frames_with_the_base_columns(store: Store) -> None:
    store.create_run("a")
    trials = store.trials_frame("a")
    assert trials.empty
    assert list(trials.columns) == [
        "run", "strategy", "trial_id", "number", "status", *BASE_METRICS,
        "n_folds", "duration_s", "n_params", "epochs", "max_epochs", "images", "stop_reason", "seed", "error", "started_at",
        "ended_at",
    ]
    assert trials["val_accuracy"].dtype == np.dtype("float64")
    assert list(store.folds_frame("a").columns) == ["run", "trial_id", "fold", *BASE_METRICS]
    assert list(store.history_frame("a").columns) == ["run", "trial_id", "fold", "epoch", "metric", "value"]
    assert store.trials_frame([]).empty


def test_runs_frame_counts_trials(store: Store) -> None:
    assert store.runs_frame().empty
    store.create_run("a", strategy="random", dataset="digits", spec_name="cnn", spec_hash="h1", seed=3)
    store.create_run("b", kind="cv", strategy="grid")
    for record in _three_trials():
        store.add_trial("a", record)
    store.finish_run("a")
    frame = store.runs_frame()
    assert list(frame.columns) == ["run", "run_id", "kind", "strategy", "dataset", "spec_name", "spec_hash", "seed",
                                   "status", "started_at", "ended_at", "n_trials", "n_ok"]
    assert frame[["run", "run_id", "kind", "strategy", "dataset", "spec_name", "spec_hash", "seed", "status",
                  "n_trials", "n_ok"]].to_dict("list") == {
        "run": ["a", "b"], "run_id": [1, 2], "kind": ["search", "cv"], "strategy": ["random", "grid"],
        "dataset": ["digits", ""], "spec_name": ["cnn", ""], "spec_hash": ["h1", ""], "seed": [3, 0],
        "status": ["finished", "running"], "n_trials": [3, 0], "n_ok": [2, 0],
    }
    assert frame["ended_at"].notna().tolist() == [True, False]
    assert frame["n_ok"].dtype == np.dtype("int64")


# ---------------------------------------------------------------------- several stores, processes


def test_two_stores_on_one_file_see_each_others_commits(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    with Store(path) as first, Store(path) as second:
        first.create_run("a")
        t0, t1, t2 = _three_trials()
        first.add_trial("a", t0)
        _assert_same(second.get_trials("a"), [t0])
        second.add_trial("a", t1)
        first.add_trial("a", t2)
        _assert_same(first.get_trials("a"), [t0, t1, t2])
        assert second.runs_frame()["n_trials"].tolist() == [3]


def test_a_pickled_store_reopens_the_same_file(store: Store) -> None:
    store.create_run("a")
    copy = pickle.loads(pickle.dumps(store))
    assert copy.path == store.path
    assert copy.run_names() == ["a"]
    copy.close()
    copy.close()
    with pytest.raises(StoreError, match="the store is closed"):
        copy.run_names()


_WRITER = r"""
import sys
from automnist.records import TrialRecord
from automnist.store import Store

store = Store(sys.argv[1])
for i in range(20):
    history = [{"fold": 0, "epoch": e, "metric": "loss", "value": 1.0 / e} for e in range(1, 11)]
    store.add_trial("shared", TrialRecord(f"{sys.argv[2]}-{i}", i, {"worker": sys.argv[2]}, history=history))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def test_several_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    with Store(path) as s:
        s.create_run("shared")
        workers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{k}"], env=_env(),
                                    stderr=subprocess.PIPE, text=True) for k in range(3)]
        errors = [w.communicate(timeout=120)[1] for w in workers]
        assert [w.returncode for w in workers] == [0, 0, 0], errors
        frame = s.trials_frame("shared")
        assert frame.groupby("param_worker").size().to_dict() == {"w0": 20, "w1": 20, "w2": 20}
        assert len(s.history_frame("shared")) == 600
        assert s._connection.get().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


_CHILD = r"""
import pickle, sqlite3, sys
from automnist.store import Store

path, records = sys.argv[1], pickle.loads(bytes.fromhex(sys.argv[2]))
store = Store(path)
for record in records:
    store.add_trial("crash", record)
# A third trial in flight: its transaction is open when the process is killed.
raw = sqlite3.connect(path, isolation_level=None, timeout=30)
raw.execute("BEGIN IMMEDIATE")
raw.execute("INSERT INTO trials (run_id, trial_id, number, params, status, metrics, duration_s, seed, epochs,"
            " started_at, ended_at) VALUES (1, 'in-flight', 2, '{}', 'ok', '{}', 0, 0, 0, 0, 0)")
raw.executemany("INSERT INTO history VALUES (1, 'in-flight', ?, 0, ?, 'loss', 0.5)", [(i, i) for i in range(500)])
print("ready", flush=True)
n = 0
while True:
    n += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_writer_loses_only_the_trial_in_flight(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    with Store(path) as s:
        s.create_run("crash")
    records = _three_trials()[:2]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), pickle.dumps(records).hex()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    watchdog = threading.Timer(120, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line == "ready\n", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        child.stdout.close()
        child.stderr.close()

    with Store(path) as s:
        _assert_same(s.get_trials("crash"), records)
        assert s.runs_frame()["n_trials"].tolist() == [2]
        db = s._connection.get()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 8
        third = _three_trials()[2]
        s.add_trial("crash", third)  # the dead writer's lock is gone
        _assert_same(s.get_trials("crash"), [*records, third])
