"""Where a store lives: a file path or an ``sqlite:///`` / ``postgresql://`` URL, and the
store a command selected with ``--store`` (:func:`use_store`, read by :meth:`Store.at`)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from automnist.errors import StoreError

__all__ = ["store_url", "shown", "use_store", "selected_store"]

_SQLITE = {"sqlite", "sqlite+pysqlite"}
_POSTGRES = {"postgresql", "postgres", "postgresql+psycopg"}
_selected: contextvars.ContextVar[str | None] = contextvars.ContextVar("automnist_store", default=None)


def store_url(location: str | Path) -> URL:
    """The SQLAlchemy URL of a store location.

    Parameters
    ----------
    location : str or Path
        A file path (SQLite), ``sqlite:///path`` or ``postgresql://user@host:port/db``
        (driven through psycopg 3).

    Raises
    ------
    StoreError
        If the URL is malformed, names another database, or names no SQLite file.
    """
    if isinstance(location, Path) or "://" not in str(location):
        if not str(location).strip():
            raise StoreError("store: needs a file path or a URL, got ''")
        return URL.create("sqlite", database=str(location))
    try:
        url = make_url(str(location))
    except ArgumentError as exc:
        raise StoreError(f"store: not a database URL: {str(location)!r}") from exc
    if url.drivername in _SQLITE:
        if not url.database or url.database == ":memory:":
            raise StoreError(f"store: {shown(url)} names no file (write sqlite:///path/to/automnist.db)")
        return url.set(drivername="sqlite")
    if url.drivername in _POSTGRES:
        if not url.database:
            raise StoreError(f"store: {shown(url)} names no database (write postgresql://user@host:port/db)")
        return url.set(drivername="postgresql+psycopg")
    raise StoreError(f"store: unsupported database {url.drivername!r} in {shown(url)}; "
                     "use a file path, sqlite:///path or postgresql://user@host:port/db")


def shown(url: URL) -> str:
    """The location for messages: the file path of an SQLite store, the URL (password
    hidden, no driver name) of a PostgreSQL one."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


@contextmanager
def use_store(location: str | Path | None) -> Iterator[None]:
    """Inside the block, :meth:`automnist.store.Store.at` opens ``location`` instead of
    ``<results_dir>/automnist.db`` (None: no change).  The CLI's ``--store`` option.

    Raises
    ------
    StoreError
        If ``location`` is not a store location (checked on entering).
    """
    if location is None:
        yield
        return
    store_url(location)
    token = _selected.set(str(location))
    try:
        yield
    finally:
        _selected.reset(token)


def selected_store() -> str | None:
    """The location selected by the innermost :func:`use_store` block, or None."""
    return _selected.get()
