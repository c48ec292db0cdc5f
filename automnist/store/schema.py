"""The store's tables and schema version (optuna's ``storages/_rdb/models.py``): one
SQLAlchemy definition for SQLite and PostgreSQL, created, migrated and checked here."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, CheckConstraint, Column, Double, ForeignKeyConstraint, Index, Integer, MetaData,
    PrimaryKeyConstraint, Table, Text, inspect, text,
)
from sqlalchemy.engine import Connection

from automnist.errors import StoreError

__all__ = ["DB_NAME", "SCHEMA_VERSION", "RUN_KINDS", "RUN_STATUSES", "RUN_COLUMNS", "TRIAL_COLUMNS",
           "metadata", "runs", "trials", "folds", "history", "rungs", "ensure_schema"]

#: File name of the store inside a results directory (:meth:`automnist.store.Store.at`).
DB_NAME = "automnist.db"
#: Bump it (and add a migration) when the schema changes.  Kept in ``PRAGMA user_version``
#: (SQLite) or in the one-row table ``automnist_schema`` (PostgreSQL).
#: 2: trials gained ``max_epochs``, ``images``, ``stop_reason``; the ``rungs`` table.
SCHEMA_VERSION = 2
RUN_KINDS = ("search", "cv", "lr_find", "sweep", "denoise")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
_TRIAL_STATUSES = ("ok", "failed", "infeasible")

metadata = MetaData()


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})")


runs = Table(
    "runs", metadata,
    Column("run_id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    *(Column(c, Text, nullable=False, server_default="")
      for c in ("spec_name", "spec_text", "spec_hash", "strategy", "dataset")),
    Column("seed", BigInteger, nullable=False, server_default="0"),
    Column("config", Text, nullable=False, server_default="{}"),
    Column("versions", Text, nullable=False, server_default="{}"),
    Column("status", Text, _one_of("status", RUN_STATUSES), nullable=False, server_default="running"),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double),
)
trials = Table(
    "trials", metadata,
    Column("run_id", Integer, nullable=False),
    Column("trial_id", Text, nullable=False),
    Column("number", Integer, nullable=False),
    Column("params", Text, nullable=False),
    Column("status", Text, _one_of("status", _TRIAL_STATUSES), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("duration_s", Double, nullable=False),
    Column("n_params", BigInteger),
    Column("seed", BigInteger, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("error", Text),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double, nullable=False),
    Column("max_epochs", Integer, nullable=False, server_default="0"),
    Column("images", BigInteger),
    Column("stop_reason", Text),
    PrimaryKeyConstraint("run_id", "trial_id"),
    ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE", name="trials_run"),
    Index("trials_run_number", "run_id", "number"),
)


def _per_trial(name: str, *columns: Column, key: tuple[str, ...]) -> Table:
    """A table of rows that belong to one trial (deleted with it), keyed by ``run_id, trial_id, *key``."""
    return Table(
        name, metadata,
        Column("run_id", Integer, nullable=False),
        Column("trial_id", Text, nullable=False),
        *columns,
        PrimaryKeyConstraint("run_id", "trial_id", *key),
        ForeignKeyConstraint(["run_id", "trial_id"], ["trials.run_id", "trials.trial_id"], ondelete="CASCADE",
                             name=f"{name}_trial"),
        sqlite_with_rowid=False,
    )


folds = _per_trial("folds", Column("fold", Integer, nullable=False), Column("metric", Text, nullable=False),
                   Column("value", Double), key=("fold", "metric"))
history = _per_trial("history", Column("seq", Integer, nullable=False), Column("fold", Integer, nullable=False),
                     Column("epoch", Integer, nullable=False), Column("metric", Text, nullable=False),
                     Column("value", Double), key=("seq",))
rungs = _per_trial("rungs", Column("rung", Integer, nullable=False), Column("epochs", Integer, nullable=False),
                   Column("images", BigInteger), Column("metrics", Text, nullable=False), key=("rung",))

#: PostgreSQL only: the schema version (SQLite keeps it in ``PRAGMA user_version``).
_version_table = Table("automnist_schema", MetaData(), Column("version", Integer, nullable=False))

#: Columns of the ``runs`` table, in the order :meth:`Store.get_run` reads them.
RUN_COLUMNS = tuple(c.name for c in runs.columns)
#: Columns of the ``trials`` table after ``run_id``, in the order trials are written and read.
TRIAL_COLUMNS = tuple(c.name for c in trials.columns)[1:]

#: From version 1 (before the fidelity of a trial was stored) to 2; SQLite only (the
#: PostgreSQL store started at version 2).
_MIGRATE_1_TO_2 = (
    "ALTER TABLE trials ADD COLUMN max_epochs INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE trials ADD COLUMN images INTEGER",
    "ALTER TABLE trials ADD COLUMN stop_reason TEXT",
)
#: Serialises schema creation by several processes on one PostgreSQL database.
_PG_LOCK_KEY = 0x61757470


def ensure_schema(db: Connection, where: str, *, create: bool = True) -> None:
    """Create, migrate and check the tables, inside the caller's write transaction.

    Parameters
    ----------
    db : sqlalchemy.engine.Connection
        An open connection holding a write transaction (``BEGIN IMMEDIATE`` on SQLite).
    where : str
        The store's location, for error messages.
    create : bool
        Create the tables of an empty database; when False, an empty database is an error
        (read-only commands never create a store).

    Raises
    ------
    StoreError
        If the database was written by a newer automnist, holds tables that are not
        automnist's, lacks a table or column, or (``create=False``) holds no store.
    """
    postgres = db.dialect.name == "postgresql"
    if postgres:
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    version = _read_version(db, postgres)
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where}: schema version {version} was written by a newer automnist "
                         f"(this one reads version {SCHEMA_VERSION}); upgrade automnist")
    existing = set(inspect(db).get_table_names())
    # A PostgreSQL database may hold other applications' tables; an SQLite file is ours alone.
    clash = existing & set(metadata.tables) if postgres else existing - {_version_table.name}
    if version == 0:
        if clash:
            raise StoreError(f"{where}: not an automnist results store (it holds tables "
                             f"{', '.join(sorted(clash))} but no automnist schema version)")
        if not create:
            raise StoreError(f"{where}: no automnist results store there (it is empty)")
        metadata.create_all(db)
    elif version == 1 and not postgres:
        _check_tables(db, where, existing, skip={"max_epochs", "images", "stop_reason", "rungs"})
        for statement in _MIGRATE_1_TO_2:
            db.execute(text(statement))
        rungs.create(db)
    if version != SCHEMA_VERSION:
        _write_version(db, postgres)
    _check_tables(db, where, set(inspect(db).get_table_names()))


def _read_version(db: Connection, postgres: bool) -> int:
    if not postgres:
        return int(db.execute(text("PRAGMA user_version")).scalar_one())
    if not inspect(db).has_table(_version_table.name):
        return 0
    return int(db.execute(_version_table.select()).scalar() or 0)


def _write_version(db: Connection, postgres: bool) -> None:
    if not postgres:
        db.execute(text(f"PRAGMA user_version = {SCHEMA_VERSION:d}"))
        return
    _version_table.create(db, checkfirst=True)
    db.execute(_version_table.delete())
    db.execute(_version_table.insert().values(version=SCHEMA_VERSION))


def _check_tables(db: Connection, where: str, existing: set[str], skip: frozenset[str] | set[str] = frozenset()) -> None:
    """StoreError naming the first table or column of :data:`metadata` the database lacks."""
    inspector = inspect(db)
    for table in metadata.sorted_tables:
        if table.name in skip:
            continue
        if table.name not in existing:
            raise StoreError(f"{where}: damaged results store: table {table.name!r} is missing")
        have = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in have and c.name not in skip]
        if missing:
            raise StoreError(f"{where}: damaged results store: table {table.name!r} lacks column {missing[0]!r}")
