"""One process's connections to the store, through SQLAlchemy: SQLite in WAL mode with a
busy timeout and ``BEGIN IMMEDIATE`` writes, or PostgreSQL through psycopg 3; the schema
checked on opening, fresh connections after ``fork()``, database errors as one-line
:class:`~automnist.errors.StoreError`."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from automnist.errors import StoreError
from automnist.store.codec import DamagedStore
from automnist.store.location import shown
from automnist.store.schema import ensure_schema

__all__ = ["Connection", "first_line"]

_TIMEOUT_S = 30.0
#: What a damaged or foreign database raises while it is read.
_DAMAGE = (SQLAlchemyError, sqlite3.Error, ValueError, TypeError, KeyError, AttributeError, OverflowError,
           UnicodeError, RecursionError)


def first_line(exc: BaseException) -> str:
    """The first line of a database error (drivers add SQL and links on further lines)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Connection:
    """The connections a :class:`automnist.store.Store` reads and writes through.

    Parameters
    ----------
    url : sqlalchemy.engine.URL
        The store (see :func:`automnist.store.location.store_url`).
    create : bool
        Create the tables of an empty database (when False an empty one is an error).

    Raises
    ------
    StoreError
        If the database cannot be opened, is not an automnist store, or has a newer schema.
    """

    def __init__(self, url: URL, *, create: bool = True) -> None:
        self.url, self.where, self._create = url, shown(url), create
        self.sqlite = url.get_backend_name() == "sqlite"
        self._pid = os.getpid()
        self._engine: Engine | None = None
        self._raw: Any = None
        self._engine = self._open()

    def close(self) -> None:
        """Close the connections (idempotent; a forked child leaves its parent's alone)."""
        if self._engine is not None:
            if self._pid == os.getpid():
                if self._raw is not None:
                    self._raw.close()
                self._engine.dispose()
            else:
                self._engine.dispose(close=False)
        self._engine, self._raw = None, None

    def _open(self) -> Engine:
        if self.sqlite:
            engine = create_engine(self.url, connect_args={"timeout": _TIMEOUT_S, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            try:
                engine = create_engine(self.url, pool_size=2, connect_args={"connect_timeout": 10})
            except ImportError as exc:
                raise StoreError(f"{self.where}: a PostgreSQL store needs psycopg 3 "
                                 "(pip install 'automnist[postgres]')") from exc
        try:
            if self.sqlite and self._create:
                _enable_wal(engine)
            with engine.execution_options(automnist_write=True).begin() as db:
                ensure_schema(db, self.where, create=self._create)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            engine.dispose()
            raise StoreError(f"{self.where}: cannot open the results store: {first_line(exc)}") from exc
        except BaseException:
            engine.dispose()
            raise
        return engine

    def engine(self) -> Engine:
        """The engine of this process (made anew after ``fork()``)."""
        if self._pid != os.getpid():
            # Forked child: connections must not cross fork(); open fresh ones.
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._pid, self._engine, self._raw = os.getpid(), None, None
            self._engine = self._open()
        if self._engine is None:
            raise StoreError(f"{self.where}: the store is closed")
        return self._engine

    def get(self) -> Any:
        """A raw driver connection in autocommit mode (``sqlite3`` or psycopg), for checks
        such as ``PRAGMA integrity_check``."""
        engine = self.engine()
        if self._raw is None:
            self._raw = engine.raw_connection()
            if not self.sqlite:
                self._raw.driver_connection.autocommit = True
        return self._raw

    @contextmanager
    def write(self) -> Iterator[SAConnection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), committed when the block
        completes.  :class:`sqlalchemy.exc.IntegrityError` passes through; other database
        errors become :class:`StoreError`."""
        try:
            with self.engine().execution_options(automnist_write=True).begin() as db:
                yield db
        except IntegrityError:
            raise
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreError(f"{self.where}: cannot write: {first_line(exc)}") from exc

    @contextmanager
    def read(self) -> Iterator[SAConnection]:
        """One read transaction: every query inside sees the same snapshot.  What a damaged
        or foreign database raises inside the block becomes one :class:`StoreError`."""
        options = {} if self.sqlite else {"isolation_level": "REPEATABLE READ"}
        try:
            with self.engine().connect() as db, db.execution_options(**options).begin():
                yield db
        except DamagedStore as exc:
            raise StoreError(f"{self.where}: damaged results store: {exc}") from exc
        except StoreError:
            raise
        except _DAMAGE as exc:
            what = "invalid JSON" if isinstance(exc, json.JSONDecodeError) else first_line(exc)
            raise StoreError(f"{self.where}: damaged results store: {what}") from exc


def _sqlite_connect(dbapi: sqlite3.Connection, record: Any) -> None:
    # Transactions are explicit (the "begin" listener), not pysqlite's implicit ones.
    dbapi.isolation_level = None
    for pragma in (f"busy_timeout = {int(_TIMEOUT_S * 1000)}", "synchronous = NORMAL", "foreign_keys = ON"):
        dbapi.execute(f"PRAGMA {pragma}")


def _sqlite_begin(db: SAConnection) -> None:
    immediate = db.get_execution_options().get("automnist_write")
    db.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(engine: Engine) -> None:
    """Put the file in WAL mode.  Several processes opening a fresh file at once: the switch
    answers "database is locked" at once, without waiting for the busy timeout, so it is
    retried with a growing random backoff until the timeout."""
    deadline, pause = time.monotonic() + _TIMEOUT_S, 0.005
    raw = engine.raw_connection()
    try:
        db = raw.driver_connection  # autocommit (_sqlite_connect): the switch needs no transaction
        while True:
            try:
                if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(pause * (1 + random.random()))
                pause = min(pause * 2, 0.25)
    finally:
        raw.close()
