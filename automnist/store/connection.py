"""One process's SQLite connection to the store: WAL mode, a busy timeout, explicit
transactions, the schema checked on opening, and a fresh connection after ``fork()``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automnist.errors import StoreError
from automnist.store.schema import ensure_schema

__all__ = ["Connection"]

_TIMEOUT_S = 30.0


class Connection:
    """The connection a :class:`automnist.store.Store` reads and writes through.

    Parameters
    ----------
    path : Path
        The database file (created, with its tables, when missing).

    Raises
    ------
    StoreError
        If the file cannot be opened, is not an SQLite database, or has a newer schema.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._db = self._open()

    def close(self) -> None:
        """Close the connection (idempotent; a forked child leaves its parent's alone)."""
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None

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
                ensure_schema(db, self.path)
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

    def get(self) -> sqlite3.Connection:
        """The open connection of this process (reopened after ``fork()``)."""
        if self._pid != os.getpid():
            # Forked child: an SQLite connection must not cross fork(); open a fresh one.
            self._pid, self._db = os.getpid(), None
            self._db = self._open()
        if self._db is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), committed when the block completes."""
        db = self.get()
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
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        db = self.get()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("COMMIT")
