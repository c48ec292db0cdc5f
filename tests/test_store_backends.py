"""The store on both back ends (SQLite file, real PostgreSQL server from tests/pg_server.py):
URLs, one schema and its version, trials written once, and several processes writing at once."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from automnist.errors import StoreError
from automnist.records import TrialRecord
from automnist.store import DB_NAME, SCHEMA_VERSION, Store, use_store
from automnist.store.location import store_url


def _trial(worker: str, i: int, n: int = 1) -> TrialRecord:
    history = [{"fold": 0, "epoch": e, "metric": "loss", "value": 1.0 / e} for e in (1, 2)]
    return TrialRecord(f"{worker}-{i}", i, {"worker": worker, "units": 8 * (i % 4 + 1)},
                       metrics={"val_accuracy": i / n, "loss": 1.0 - i / n}, history=history, seed=2**32 - 1,
                       n_params=2**40, epochs=2, max_epochs=2, started_at=float(i), ended_at=i + 0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store location on each back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results' / DB_NAME}"
    return request.getfixturevalue("pg_url")


# ---------------------------------------------------------------------- locations


@pytest.mark.parametrize(("given", "driver", "database"), [
    ("results/automnist.db", "sqlite", "results/automnist.db"),
    (Path("/tmp/x/automnist.db"), "sqlite", "/tmp/x/automnist.db"),
    ("sqlite:///results/a.db", "sqlite", "results/a.db"),
    ("sqlite:////abs/a.db", "sqlite", "/abs/a.db"),
    ("postgresql://me@db.example:5433/automnist", "postgresql+psycopg", "automnist"),
    ("postgres://me:secret@db/automnist", "postgresql+psycopg", "automnist"),
])
def test_store_urls_name_the_database_and_the_driver(given: str | Path, driver: str, database: str) -> None:
    url = store_url(given)
    assert (url.drivername, url.database) == (driver, database)


@pytest.mark.parametrize(("given", "message"), [
    ("mysql://me@db/automnist", "unsupported database 'mysql'"),
    ("sqlite://", "names no file"),
    ("postgresql://me@db", "names no database"),
    ("", "needs a file path or a URL"),
])
def test_bad_store_urls_are_one_line_store_errors(given: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        Store(given)
    assert "\n" not in str(info.value)


def test_use_store_redirects_store_at(tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared" / "store.db"
    with use_store(f"sqlite:///{elsewhere}"), Store.at(tmp_path / "results") as store:
        store.create_run("a")
        assert store.path == elsewhere
    assert not (tmp_path / "results").exists()
    with Store.at(tmp_path / "results") as store:
        assert store.run_names() == []


# ---------------------------------------------------------------------- both back ends


def test_both_back_ends_round_trip_the_same_records_and_frames(location: str) -> None:
    trials = [_trial("w", i, 3) for i in range(3)]
    trials[1] = dataclasses.replace(trials[1], folds=[{"fold": 0, "val_accuracy": 0.5}, {"fold": 1, "val_accuracy": 0.7}],
                                    rungs=[{"rung": 0, "epochs": 1, "images": 100, "val_accuracy": 0.4}],
                                    stop_reason="pruned")
    with Store(location) as store:
        store.create_run("a", kind="search", strategy="random", seed=2**32 - 1, config={"epochs": 2})
        for t in trials:
            store.add_trial("a", t)
        assert store.get_trials("a") == trials
        assert store.get_run("a")["seed"] == 2**32 - 1
        frame = store.trials_frame("a")
        assert frame["trial_id"].tolist() == ["w-0", "w-1", "w-2"]
        assert frame["n_params"].tolist() == [2**40] * 3
        assert frame["n_folds"].tolist() == [0, 2, 0]
        assert store.folds_frame("a")["val_accuracy"].tolist() == [0.5, 0.7]
        assert len(store.history_frame("a")) == 6
        runs = store.runs_frame()
        assert runs[["run", "n_trials", "n_ok"]].values.tolist() == [["a", 3, 3]]
        with pytest.raises(StoreError, match="a run named 'a' already exists"):
            store.create_run("a")


def test_rewriting_a_trial_replaces_it_on_both_back_ends(location: str) -> None:
    with Store(location) as store:
        store.create_run("a")
        first = dataclasses.replace(_trial("w", 0), folds=[{"fold": 0, "val_accuracy": 0.1}])
        store.add_trial("a", first)
        again = dataclasses.replace(_trial("w", 0), metrics={"val_accuracy": 0.9}, history=[])
        store.add_trial("a", again)
        assert store.get_trials("a") == [again]
        assert store.runs_frame()["n_trials"].tolist() == [1]
        assert store.folds_frame("a").empty and store.history_frame("a").empty


def test_a_pickled_store_reopens_the_same_database(location: str) -> None:
    import pickle

    with Store(location) as store:
        store.create_run("a")
        with pickle.loads(pickle.dumps(store)) as copy:
            assert copy.run_names() == ["a"] and copy.where == store.where


def test_postgresql_records_its_schema_version_and_refuses_a_newer_one(pg_url: str) -> None:
    Store(pg_url).close()
    engine = create_engine(store_url(pg_url))
    try:
        with engine.begin() as db:
            assert db.execute(text("SELECT version FROM automnist_schema")).scalar_one() == SCHEMA_VERSION
            tables = set(db.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
            assert tables == {"runs", "trials", "folds", "history", "rungs", "automnist_schema"}
            db.execute(text("UPDATE automnist_schema SET version = 9"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=r"schema version 9 was written by a newer automnist"):
        Store(pg_url)


def test_a_postgresql_database_shared_with_other_tables_gets_the_store_beside_them(pg_url: str) -> None:
    engine = create_engine(store_url(pg_url))
    try:
        with engine.begin() as db:
            db.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
        with Store(pg_url) as store:
            store.create_run("a")
        with engine.begin() as db:
            db.execute(text("DELETE FROM automnist_schema"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=r"not an automnist results store \(it holds tables folds, history, rungs, runs"):
        Store(pg_url)


def test_read_only_opening_of_an_empty_postgresql_database_creates_nothing(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no automnist results store there"):
        Store(pg_url, create=False)
    with pytest.raises(StoreError, match="cannot open the results store"):
        Store(pg_url.rsplit("/", 1)[0] + "/no_such_database", create=False)


# ---------------------------------------------------------------------- several processes


def _write_trials(locations: tuple[str, ...], run: str, worker: str, n: int, barrier: object = None) -> None:
    """One writer process: open the stores (maybe creating them), create the run unless
    another writer did, then add ``n`` trials to each store in turn, through the Store API."""
    if barrier is not None:
        barrier.wait()
    stores = [Store(location) for location in locations]
    try:
        for store in stores:
            try:
                store.create_run(run)
            except StoreError as exc:
                if "already exists" not in str(exc):
                    raise
        for i in range(n):
            for store in stores:
                store.add_trial(run, _trial(worker, i, n))
    finally:
        for store in stores:
            store.close()


def _run_writers(jobs: list[tuple[tuple[str, ...], str, str, int]], barrier: object = None) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_trials, args=(*job, barrier)) for job in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert codes == [0] * len(procs), codes


def _count(location: str, run: str) -> dict[str, int]:
    with Store(location, create=False) as store:
        frame = store.trials_frame(run)
        assert frame["trial_id"].is_unique
        return frame.groupby("param_worker").size().to_dict()


@pytest.mark.slow
def test_four_processes_write_200_trials_each_to_postgresql_and_to_sqlite_at_once(pg_url: str, tmp_path: Path) -> None:
    sqlite_location = str(tmp_path / DB_NAME)
    workers = [f"w{k}" for k in range(4)]
    _run_writers([((pg_url, sqlite_location), "shared", w, 200) for w in workers])  # each process writes to both
    for loc in (pg_url, sqlite_location):
        assert _count(loc, "shared") == {w: 200 for w in workers}
        with Store(loc) as store:
            assert len(store.history_frame("shared")) == 1600
    with sqlite3.connect(sqlite_location) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_eight_processes_started_at_once_write_500_trials_each_to_a_fresh_sqlite_store(tmp_path: Path) -> None:
    """Issue 12 item 3: opening a fresh file from several processes at once answered
    "database is locked" (the WAL switch does not wait for the busy timeout)."""
    path = tmp_path / "fresh" / DB_NAME
    path.parent.mkdir()
    workers = [f"w{k}" for k in range(8)]
    barrier = multiprocessing.get_context("spawn").Barrier(len(workers))
    _run_writers([((str(path),), "load", w, 500) for w in workers], barrier)
    counts = _count(str(path), "load")
    assert counts == {w: 500 for w in workers}
    assert sum(counts.values()) == 4000
    with Store(path) as store:
        frame = store.runs_frame()
    assert frame[["run", "n_trials", "n_ok"]].values.tolist() == [["load", 4000, 4000]]
