"""The results store: runs, trials, folds and per-epoch history in one SQLite file.

The store is the only thing two processes share (a search and its report, or several
Keras Tuner workers).  It is append-only in spirit and built to survive being killed:

* every :meth:`Store.add_trial` is one transaction, so a killed process loses at most
  the trial in flight, and re-adding the same ``(run, trial_id)`` replaces that trial
  (a resumed search never creates duplicates);
* the file is in WAL mode with a busy timeout, so several processes can write to it;
* folds and history are kept in long form (one row per fold and metric, one row per
  epoch and metric) and pivoted by pandas on the way out.

The frames (:meth:`Store.trials_frame`, :meth:`Store.folds_frame`,
:meth:`Store.history_frame`, :meth:`Store.runs_frame`) are the contract the later stages
(``aggregate``, ``plots``, ``report``) consume.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automnist.errors import StoreError
from automnist.records import TRIAL_STATUSES, TrialRecord
from automnist.spec import value_label

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Store", "DB_NAME", "SCHEMA_VERSION", "RUN_KINDS", "RUN_STATUSES", "BASE_METRICS"]

#: File name of the store inside a results directory (:meth:`Store.at`).
DB_NAME = "automnist.db"
#: Stored in ``PRAGMA user_version``; bump it (and add a migration) when the schema changes.
SCHEMA_VERSION = 1
RUN_KINDS = ("search", "cv", "lr_find", "sweep")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
#: Metric columns every trials / folds frame has (NaN when a trial has no such metric).
BASE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")

_TIMEOUT_S = 30.0
_HISTORY_KEYS = frozenset(("fold", "epoch", "metric", "value"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
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
) WITHOUT ROWID;
"""

_RUN_COLUMNS = (
    "run_id", "name", "kind", "spec_name", "spec_text", "spec_hash", "strategy", "dataset",
    "seed", "config", "versions", "status", "started_at", "ended_at",
)
_TRIAL_COLUMNS = (
    "trial_id", "number", "params", "status", "metrics", "duration_s", "n_params", "seed",
    "epochs", "error", "started_at", "ended_at",
)


class Store:
    """A results store in one SQLite file.

    Parameters
    ----------
    path : str or Path
        The database file; its parent directory and the tables are created when missing.

    Raises
    ------
    StoreError
        If the file cannot be opened, is not an SQLite database, or was written by a
        newer automnist (schema version above :data:`SCHEMA_VERSION`).

    Examples
    --------
    >>> with Store.at("results") as store:                      # doctest: +SKIP
    ...     store.create_run("digits_random", strategy="random")
    ...     store.add_trial("digits_random", record)
    ...     frame = store.trials_frame("digits_random")
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the results directory: {exc}") from exc
        self._db = self._open()

    @classmethod
    def at(cls, results_dir: str | Path) -> Store:
        """The store of a results directory: ``<results_dir>/automnist.db``."""
        return cls(Path(results_dir) / DB_NAME)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def __reduce__(self) -> tuple[type[Store], tuple[str]]:
        # A Store sent to another process reopens the same file there.
        return (type(self), (str(self.path),))

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent).  Committed trials are already on disk."""
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        name: str,
        *,
        kind: str = "search",
        spec_name: str = "",
        spec_text: str = "",
        spec_hash: str = "",
        strategy: str = "",
        dataset: str = "",
        seed: int = 0,
        config: dict[str, Any] | None = None,
        versions: dict[str, Any] | None = None,
    ) -> int:
        """Record a new run (status ``running``, ``started_at`` now).

        Parameters
        ----------
        name : str
            Unique name of the run.
        kind : {"search", "cv", "lr_find", "sweep"}
        spec_name, spec_text, spec_hash : str
            The spec the run was made from (its YAML text and hash, for resuming).
        strategy, dataset : str
        seed : int
        config, versions : dict, optional
            Stored as JSON (the parsed spec / options, library versions).

        Returns
        -------
        int
            The new ``run_id``.

        Raises
        ------
        StoreError
            If ``name`` is empty, not a string, or already taken.
        ValueError
            If ``kind`` is not one of :data:`RUN_KINDS`.
        """
        _check_name(name)
        if kind not in RUN_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(RUN_KINDS)}, got {kind!r}")
        row = (
            name, kind, spec_name, spec_text, spec_hash, strategy, dataset, _as_int(seed, "seed"),
            _dumps(config or {}, "config"), _dumps(versions or {}, "versions"), time.time(),
        )
        try:
            with self._write() as db:
                cur = db.execute(
                    "INSERT INTO runs (name, kind, spec_name, spec_text, spec_hash, strategy, dataset,"
                    " seed, config, versions, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"a run named {name!r} already exists in {self.path}; choose another name") from exc
        return int(cur.lastrowid)

    def get_run(self, name: str) -> dict[str, Any] | None:
        """All columns of run ``name`` (``config`` and ``versions`` decoded), or None.

        Raises
        ------
        StoreError
            If ``name`` is empty or not a string.
        """
        _check_name(name)
        with self._read() as db:
            row = db.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        run = dict(zip(_RUN_COLUMNS, row))
        run["config"] = json.loads(run["config"])
        run["versions"] = json.loads(run["versions"])
        return run

    def require_run(self, name: str) -> dict[str, Any]:
        """Like :meth:`get_run`, but a missing run raises :class:`StoreError` listing the known runs."""
        run = self.get_run(name)
        if run is None:
            raise self._unknown([name])
        return run

    def run_names(self) -> list[str]:
        """Names of all runs, oldest first."""
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT name FROM runs ORDER BY run_id")]

    def finish_run(self, name: str, status: str = "finished") -> None:
        """Mark run ``name`` as ended: ``finished``, ``interrupted`` or ``failed``; sets ``ended_at``."""
        if status == "running" or status not in RUN_STATUSES:
            raise ValueError(f"status: must be one of finished, interrupted, failed, got {status!r}")
        self.set_status(name, status)

    @contextmanager
    def recording(self, name: str) -> Iterator[None]:
        """End run ``name`` when the block ends: ``finished`` when it completes,
        ``interrupted`` on Ctrl-C, ``failed`` on any other exception (which propagates)."""
        status = "failed"
        try:
            yield
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.finish_run(name, status)

    def update_run_config(self, name: str, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into the stored ``config`` of run ``name`` (top-level keys replaced).

        For facts known only once a run has started, such as the final loss of a
        denoising autoencoder trained before the first trial.

        Raises
        ------
        StoreError
            If there is no run ``name`` or ``changes`` is not JSON-serialisable.
        """
        with self._write() as db:
            row = db.execute("SELECT config FROM runs WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise self._unknown([name], db)
            config = {**json.loads(row[0]), **changes}
            db.execute("UPDATE runs SET config = ? WHERE name = ?", (_dumps(config, "config"), name))

    def set_status(self, name: str, status: str) -> None:
        """Set the status of run ``name``.

        ``running`` (a resumed run) clears ``ended_at``; any other status sets it to now.

        Raises
        ------
        ValueError
            If ``status`` is not one of :data:`RUN_STATUSES`.
        StoreError
            If there is no run ``name``.
        """
        _check_name(name)
        if status not in RUN_STATUSES:
            raise ValueError(f"status: must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        ended = None if status == "running" else time.time()
        with self._write() as db:
            cur = db.execute("UPDATE runs SET status = ?, ended_at = ? WHERE name = ?", (status, ended, name))
        if cur.rowcount == 0:
            raise self._unknown([name])

    # ------------------------------------------------------------------ trials

    def add_trial(self, run: str, record: TrialRecord) -> None:
        """Commit one finished trial with its folds and history, in one transaction.

        Adding a trial whose ``trial_id`` the run already has replaces it, so a resumed
        search never duplicates trials.

        Parameters
        ----------
        run : str
            Name of an existing run.
        record : TrialRecord
            Metrics that are NaN or infinite are stored as null and read back as NaN.

        Raises
        ------
        StoreError
            If there is no run ``run``.
        ValueError
            If the record is malformed: unknown status, params that are not JSON data,
            folds without an integer ``fold``, history rows without exactly the keys
            ``fold``, ``epoch``, ``metric``, ``value``.
        """
        _check_name(run)
        if not isinstance(record, TrialRecord):
            raise TypeError(f"record: must be a TrialRecord, got {type(record).__name__}")
        trial, folds, history = _encode_trial(record)
        with self._write() as db:
            found = db.execute("SELECT run_id FROM runs WHERE name = ?", (run,)).fetchone()
            if found is None:
                raise self._unknown([run], db)
            run_id = found[0]
            key = (run_id, record.trial_id)
            db.execute("DELETE FROM history WHERE run_id = ? AND trial_id = ?", key)
            db.execute("DELETE FROM folds WHERE run_id = ? AND trial_id = ?", key)
            db.execute("DELETE FROM trials WHERE run_id = ? AND trial_id = ?", key)
            db.execute(
                f"INSERT INTO trials (run_id, {', '.join(_TRIAL_COLUMNS)})"
                f" VALUES (?, {', '.join('?' * len(_TRIAL_COLUMNS))})",
                (run_id, *trial),
            )
            db.executemany("INSERT INTO folds VALUES (?, ?, ?, ?, ?)", [(*key, *f) for f in folds])
            db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(*key, seq, *h) for seq, h in enumerate(history)])

    def get_trials(self, run: str) -> list[TrialRecord]:
        """The trials of ``run`` ordered by number, equal to the records added.

        Stored JSON turns tuples into lists, NaN/inf metrics come back as NaN, and folds
        come back ordered by fold number.

        Raises
        ------
        StoreError
            If there is no run ``run``.
        """
        _check_name(run)
        with self._read() as db:
            run_id = self._run_ids([run], db)[0][1]
            trials = db.execute(
                f"SELECT {', '.join(_TRIAL_COLUMNS)} FROM trials WHERE run_id = ? ORDER BY number, trial_id",
                (run_id,),
            ).fetchall()
            fold_rows = db.execute(
                "SELECT trial_id, fold, metric, value FROM folds WHERE run_id = ? ORDER BY trial_id, fold",
                (run_id,),
            ).fetchall()
            history_rows = db.execute(
                "SELECT trial_id, fold, epoch, metric, value FROM history WHERE run_id = ? ORDER BY trial_id, seq",
                (run_id,),
            ).fetchall()
        folds: dict[str, dict[int, dict[str, Any]]] = {}
        for trial_id, fold, metric, value in fold_rows:
            entry = folds.setdefault(trial_id, {}).setdefault(fold, {"fold": fold})
            entry[metric] = _real_out(value)
        history: dict[str, list[dict[str, Any]]] = {}
        for trial_id, fold, epoch, metric, value in history_rows:
            history.setdefault(trial_id, []).append(
                {"fold": fold, "epoch": epoch, "metric": metric, "value": _real_out(value)}
            )
        out = []
        for row in trials:
            t = dict(zip(_TRIAL_COLUMNS, row))
            out.append(TrialRecord(
                trial_id=t["trial_id"],
                number=t["number"],
                params=json.loads(t["params"]),
                status=t["status"],
                metrics=_load_metrics(t["metrics"]),
                folds=list(folds.get(t["trial_id"], {}).values()),
                history=history.get(t["trial_id"], []),
                duration_s=t["duration_s"],
                n_params=t["n_params"],
                seed=t["seed"],
                epochs=t["epochs"],
                error=t["error"],
                started_at=t["started_at"],
                ended_at=t["ended_at"],
            ))
        return out

    # ------------------------------------------------------------------ frames

    def runs_frame(self) -> pd.DataFrame:
        """One row per run, oldest first.

        Returns
        -------
        DataFrame
            ``run, run_id, kind, strategy, dataset, spec_name, spec_hash, seed, status,
            started_at, ended_at`` (NaN while running), ``n_trials``, ``n_ok``.
        """
        with self._read() as db:
            rows = db.execute(
                "SELECT r.name, r.run_id, r.kind, r.strategy, r.dataset, r.spec_name, r.spec_hash, r.seed,"
                " r.status, r.started_at, r.ended_at, COUNT(t.trial_id), COALESCE(SUM(t.status = 'ok'), 0)"
                " FROM runs r LEFT JOIN trials t ON t.run_id = r.run_id GROUP BY r.run_id ORDER BY r.run_id"
            ).fetchall()
        names = ("run", "run_id", "kind", "strategy", "dataset", "spec_name", "spec_hash", "seed", "status",
                 "started_at", "ended_at", "n_trials", "n_ok")
        dtypes = (None, "int64", None, None, None, None, None, "int64", None, "float64", "float64", "int64", "int64")
        columns = list(zip(*rows)) if rows else [()] * len(names)
        return _frame({n: (list(c), d) for n, c, d in zip(names, columns, dtypes)})

    def trials_frame(self, runs: str | list[str]) -> pd.DataFrame:
        """One row per trial of ``runs`` (in the order given, then by trial number).

        Parameters
        ----------
        runs : str or list of str
            Run name(s).

        Returns
        -------
        DataFrame
            ``run, strategy, trial_id, number, status``, one ``param_<name>`` column per
            hyperparameter (list and dict values as :func:`automnist.spec.value_label`
            strings; missing where a trial lacks the parameter), the metric columns
            :data:`BASE_METRICS` (NaN when absent) and every other metric present (e.g.
            ``val_accuracy_std``), then ``n_folds`` (0 without CV), ``duration_s``,
            ``n_params``, ``epochs``, ``seed``, ``error``, ``started_at``, ``ended_at``.

        Raises
        ------
        StoreError
            If a run name is unknown (the message lists the known runs).
        """
        names = _run_list(runs)
        rows: list[tuple[Any, ...]] = []
        with self._read() as db:
            for name, run_id, strategy in self._run_ids(names, db):
                n_folds = dict(db.execute(
                    "SELECT trial_id, COUNT(DISTINCT fold) FROM folds WHERE run_id = ? GROUP BY trial_id", (run_id,)
                ))
                for t in db.execute(
                    f"SELECT {', '.join(_TRIAL_COLUMNS)} FROM trials WHERE run_id = ? ORDER BY number, trial_id",
                    (run_id,),
                ):
                    rows.append((name, strategy, *t, n_folds.get(t[0], 0)))
        params = [json.loads(r[4]) for r in rows]
        metrics = [_load_metrics(r[6]) for r in rows]
        param_names = _union(p.keys() for p in params)
        extra = [m for m in _union(m.keys() for m in metrics) if m not in BASE_METRICS]
        data: dict[str, tuple[list[Any], str | None]] = {
            "run": ([r[0] for r in rows], None),
            "strategy": ([r[1] for r in rows], None),
            "trial_id": ([r[2] for r in rows], None),
            "number": ([r[3] for r in rows], "int64"),
            "status": ([r[5] for r in rows], None),
        }
        for p in param_names:
            values = [_param_value(ps.get(p)) for ps in params]
            data[f"param_{p}"] = (values, _param_dtype(values))
        for m in (*BASE_METRICS, *extra):
            values = [ms.get(m, math.nan) for ms in metrics]
            data[m] = (values, "float64" if all(_is_number(v) for v in values) else None)
        data.update({
            "n_folds": ([r[14] for r in rows], "int64"),
            "duration_s": ([r[7] for r in rows], "float64"),
            "n_params": ([r[8] for r in rows], "Int64"),
            "epochs": ([r[10] for r in rows], "int64"),
            "seed": ([r[9] for r in rows], "int64"),
            "error": ([r[11] for r in rows], None),
            "started_at": ([r[12] for r in rows], "float64"),
            "ended_at": ([r[13] for r in rows], "float64"),
        })
        return _frame(data)

    def folds_frame(self, runs: str | list[str]) -> pd.DataFrame:
        """One row per fold of the trials of ``runs`` that were cross-validated.

        Returns
        -------
        DataFrame
            ``run, trial_id, fold``, the metric columns :data:`BASE_METRICS` (NaN when
            absent) and every other fold metric present, sorted by name.  Rows are in
            the order of ``runs``, then trial number, then fold.

        Raises
        ------
        StoreError
            If a run name is unknown.
        """
        import pandas as pd

        names = _run_list(runs)
        rows: list[tuple[Any, ...]] = []
        with self._read() as db:
            for pos, (name, run_id, _) in enumerate(self._run_ids(names, db)):
                rows.extend(
                    (pos, number, name, trial_id, fold, metric, value)
                    for number, trial_id, fold, metric, value in db.execute(
                        "SELECT t.number, f.trial_id, f.fold, f.metric, f.value FROM folds f"
                        " JOIN trials t ON t.run_id = f.run_id AND t.trial_id = f.trial_id"
                        " WHERE f.run_id = ?",
                        (run_id,),
                    )
                )
        metrics = [*BASE_METRICS, *sorted({r[5] for r in rows} - set(BASE_METRICS))]
        if not rows:
            return _frame({"run": ([], None), "trial_id": ([], None), "fold": ([], "int64"),
                           **{m: ([], "float64") for m in metrics}})
        long = pd.DataFrame(rows, columns=["pos", "number", "run", "trial_id", "fold", "metric", "value"])
        long["value"] = long["value"].astype("float64")
        wide = long.pivot(index=["pos", "number", "run", "trial_id", "fold"], columns="metric", values="value")
        wide = wide.reindex(columns=metrics).reset_index().drop(columns=["pos", "number"])
        wide.columns.name = None
        return wide

    def history_frame(self, runs: str | list[str]) -> pd.DataFrame:
        """Per-epoch metrics of the trials of ``runs`` in tidy long form.

        Returns
        -------
        DataFrame
            ``run, trial_id, fold, epoch, metric, value``; rows in the order of ``runs``,
            then trial number, then the order the trial recorded them.

        Raises
        ------
        StoreError
            If a run name is unknown.
        """
        names = _run_list(runs)
        rows: list[tuple[Any, ...]] = []
        with self._read() as db:
            for name, run_id, _ in self._run_ids(names, db):
                rows.extend(
                    (name, *r)
                    for r in db.execute(
                        "SELECT h.trial_id, h.fold, h.epoch, h.metric, h.value FROM history h"
                        " JOIN trials t ON t.run_id = h.run_id AND t.trial_id = h.trial_id"
                        " WHERE h.run_id = ? ORDER BY t.number, h.trial_id, h.seq",
                        (run_id,),
                    )
                )
        names_ = ("run", "trial_id", "fold", "epoch", "metric", "value")
        dtypes = (None, None, "int64", "int64", None, "float64")
        columns = list(zip(*rows)) if rows else [()] * len(names_)
        return _frame({n: (list(c), d) for n, c, d in zip(names_, columns, dtypes)})

    # ------------------------------------------------------------------ internals

    def _open(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE for writes).
            db = sqlite3.connect(str(self.path), timeout=_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the results store: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {int(_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: durable across process crashes
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path}: schema version {version} was written by a newer automnist "
                        f"(this one reads version {SCHEMA_VERSION}); upgrade automnist"
                    )
                if version < SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.close()
            raise StoreError(f"{self.path}: cannot open the results store: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return db

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # Forked child: an SQLite connection must not cross fork(); open a fresh one.
            self._pid, self._db = os.getpid(), None
            self._db = self._open()
        if self._db is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: cannot write ({exc}) after waiting {_TIMEOUT_S:g} s") from exc
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # One read transaction: every query inside sees the same snapshot.
        db = self._conn()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("COMMIT")

    def _run_ids(self, names: list[str], db: sqlite3.Connection) -> list[tuple[str, int, str]]:
        """``(name, run_id, strategy)`` for each name, in order; unknown names raise."""
        found = {}
        for name in names:
            row = db.execute("SELECT run_id, strategy FROM runs WHERE name = ?", (name,)).fetchone()
            if row is not None:
                found[name] = row
        missing = [n for n in names if n not in found]
        if missing:
            raise self._unknown(missing, db)
        return [(n, *found[n]) for n in names]

    def _unknown(self, names: list[str], db: sqlite3.Connection | None = None) -> StoreError:
        if db is None:
            db = self._conn()
        known = [r[0] for r in db.execute("SELECT name FROM runs ORDER BY run_id")]
        what = f"no run named {names[0]!r}" if len(names) == 1 else f"no runs named {', '.join(map(repr, names))}"
        return StoreError(f"{what} in {self.path}; known runs: {', '.join(known) or 'none'}")


# ---------------------------------------------------------------------- helpers


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"run name: must be a non-empty string, got {name!r}")


def _run_list(runs: str | Iterable[str]) -> list[str]:
    if isinstance(runs, str):
        names = [runs]
    elif isinstance(runs, Iterable) and not isinstance(runs, Mapping):
        names = list(runs)
    else:
        raise StoreError(f"runs: must be a run name or a list of run names, got {runs!r}")
    for name in names:
        _check_name(name)
    return list(dict.fromkeys(names))


def _as_int(value: Any, what: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what}: must be an integer{' or None' if optional else ''}, got {value!r}")
    return int(value)


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what}: must be a number, got {value!r}")
    return float(value)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: must be JSON data (numbers finite): {exc}, got {value!r}") from exc


def _finite(value: Any) -> Any:
    """Metric values for JSON: numpy scalars become Python numbers, NaN/inf become None."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _load_metrics(text: str) -> dict[str, Any]:
    return {k: math.nan if v is None else v for k, v in json.loads(text).items()}


def _real_in(value: Any, what: str) -> float | None:
    if value is None:
        return None
    f = _as_float(value, what)
    return f if not math.isnan(f) else None


def _real_out(value: float | None) -> float:
    return math.nan if value is None else value


def _encode_trial(record: TrialRecord) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Validate ``record`` and turn it into the trial row, fold rows and history rows."""
    tid = record.trial_id
    if not isinstance(tid, str) or not tid:
        raise ValueError(f"trial_id: must be a non-empty string, got {tid!r}")
    where = f"trial {tid!r}"
    if record.status not in TRIAL_STATUSES:
        raise ValueError(f"{where}: status must be one of {', '.join(TRIAL_STATUSES)}, got {record.status!r}")
    if not isinstance(record.params, Mapping):
        raise ValueError(f"{where}: params must be a dict, got {record.params!r}")
    if not isinstance(record.metrics, Mapping):
        raise ValueError(f"{where}: metrics must be a dict, got {record.metrics!r}")
    if record.error is not None and not isinstance(record.error, str):
        raise ValueError(f"{where}: error must be a string or None, got {record.error!r}")
    trial = (
        tid,
        _as_int(record.number, f"{where}: number"),
        _dumps(dict(record.params), f"{where}: params"),
        record.status,
        _dumps(_finite(dict(record.metrics)), f"{where}: metrics"),
        _as_float(record.duration_s, f"{where}: duration_s"),
        _as_int(record.n_params, f"{where}: n_params", optional=True),
        _as_int(record.seed, f"{where}: seed"),
        _as_int(record.epochs, f"{where}: epochs"),
        record.error,
        _as_float(record.started_at, f"{where}: started_at"),
        _as_float(record.ended_at, f"{where}: ended_at"),
    )
    folds: list[tuple[Any, ...]] = []
    seen: set[int] = set()
    for i, fold in enumerate(record.folds):
        number = fold.get("fold") if isinstance(fold, Mapping) else None
        if isinstance(number, bool) or not isinstance(number, numbers.Integral):
            raise ValueError(f"{where}: folds[{i}] needs an integer 'fold' key, got {fold!r}")
        if int(number) in seen:
            raise ValueError(f"{where}: folds[{i}]: fold {number} appears twice")
        seen.add(int(number))
        for metric, value in fold.items():
            if metric != "fold":
                folds.append((int(number), str(metric), _real_in(value, f"{where}: folds[{i}].{metric}")))
    history: list[tuple[Any, ...]] = []
    for i, row in enumerate(record.history):
        if not isinstance(row, Mapping) or set(row) != _HISTORY_KEYS:
            raise ValueError(f"{where}: history[{i}] must have exactly the keys epoch, fold, metric, value, got {row!r}")
        if not isinstance(row["metric"], str):
            raise ValueError(f"{where}: history[{i}].metric must be a string, got {row['metric']!r}")
        history.append((
            _as_int(row["fold"], f"{where}: history[{i}].fold"),
            _as_int(row["epoch"], f"{where}: history[{i}].epoch"),
            row["metric"],
            _real_in(row["value"], f"{where}: history[{i}].value"),
        ))
    return trial, folds, history


def _union(groups: Iterable[Iterable[str]]) -> list[str]:
    """Distinct names in order of first appearance."""
    out: dict[str, None] = {}
    for group in groups:
        out.update(dict.fromkeys(group))
    return list(out)


def _param_value(value: Any) -> Any:
    return value_label(value) if isinstance(value, (list, dict)) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _param_dtype(values: list[Any]) -> str | None:
    """The column dtype for a hyperparameter's values (None: let pandas infer)."""
    present = [v for v in values if v is not None]
    complete = len(present) == len(values)
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return "bool" if complete else "boolean"
    if all(_is_number(v) for v in present):
        if all(isinstance(v, int) for v in present):
            return "int64" if complete else "Int64"
        return "float64"
    return None


def _frame(columns: dict[str, tuple[list[Any], str | None]]) -> pd.DataFrame:
    import pandas as pd

    data = {}
    for name, (values, dtype) in columns.items():
        if dtype is None:
            data[name] = pd.Series(values, dtype=object).infer_objects()
        else:
            data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(columns))
