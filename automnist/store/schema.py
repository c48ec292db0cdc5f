"""The store's tables and schema version (optuna's ``storages/_rdb/models.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from automnist.errors import StoreError

__all__ = ["DB_NAME", "SCHEMA_VERSION", "RUN_KINDS", "RUN_STATUSES", "RUN_COLUMNS", "TRIAL_COLUMNS",
           "ensure_schema"]

#: File name of the store inside a results directory (:meth:`automnist.store.Store.at`).
DB_NAME = "automnist.db"
#: Stored in ``PRAGMA user_version``; bump it (and add a migration) when the schema changes.
#: 2: trials gained ``max_epochs``, ``images``, ``stop_reason``; the ``rungs`` table.
SCHEMA_VERSION = 2
RUN_KINDS = ("search", "cv", "lr_find", "sweep", "denoise")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")

_TABLES = """
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
    max_epochs INTEGER NOT NULL DEFAULT 0,
    images     INTEGER,
    stop_reason TEXT,
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
_RUNGS = """
CREATE TABLE IF NOT EXISTS rungs (
    run_id   INTEGER NOT NULL,
    trial_id TEXT    NOT NULL,
    rung     INTEGER NOT NULL,
    epochs   INTEGER NOT NULL,
    images   INTEGER,
    metrics  TEXT    NOT NULL,
    PRIMARY KEY (run_id, trial_id, rung),
    FOREIGN KEY (run_id, trial_id) REFERENCES trials (run_id, trial_id) ON DELETE CASCADE
) WITHOUT ROWID
"""
_SCHEMA = _TABLES + ";" + _RUNGS
#: From version 1 (before the fidelity of a trial was stored) to 2.
_MIGRATE_1_TO_2 = """
ALTER TABLE trials ADD COLUMN max_epochs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN images INTEGER;
ALTER TABLE trials ADD COLUMN stop_reason TEXT
""" + ";" + _RUNGS

#: Columns of the ``runs`` table, in the order :meth:`Store.get_run` reads them.
RUN_COLUMNS = (
    "run_id", "name", "kind", "spec_name", "spec_text", "spec_hash", "strategy", "dataset",
    "seed", "config", "versions", "status", "started_at", "ended_at",
)
#: Columns of the ``trials`` table after ``run_id``, in the order trials are written and read.
TRIAL_COLUMNS = (
    "trial_id", "number", "params", "status", "metrics", "duration_s", "n_params", "seed",
    "epochs", "error", "started_at", "ended_at", "max_epochs", "images", "stop_reason",
)


def ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new store, inside the caller's write transaction.

    Parameters
    ----------
    db : sqlite3.Connection
        An open connection that holds a write transaction (``BEGIN IMMEDIATE``).
    path : Path
        The database file, for error messages.

    Raises
    ------
    StoreError
        If the file was written by a newer automnist (schema version above
        :data:`SCHEMA_VERSION`).
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} was written by a newer automnist "
            f"(this one reads version {SCHEMA_VERSION}); upgrade automnist"
        )
    if version == SCHEMA_VERSION:
        return
    has_tables = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trials'").fetchone()
    script = _MIGRATE_1_TO_2 if version == 1 and has_tables else _SCHEMA
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
