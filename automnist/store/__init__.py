"""The results store: runs, trials, folds and per-epoch history in one SQLite file or one
PostgreSQL database, through SQLAlchemy Core.

Laid out like optuna's ``storages/_rdb``: :mod:`~automnist.store.schema` (the tables and
the schema version), :mod:`~automnist.store.location` (paths and URLs, ``--store``),
:mod:`~automnist.store.connection` (one process's connections and their transactions), :mod:`~automnist.store.store` (:class:`Store`: what is done with
the tables), :mod:`~automnist.store.codec` (values in and out of the rows) and
:mod:`~automnist.store.frames` (the DataFrames the later stages consume).
"""

from __future__ import annotations

from automnist.store.frames import BASE_METRICS
from automnist.store.location import use_store
from automnist.store.schema import DB_NAME, RUN_KINDS, RUN_STATUSES, SCHEMA_VERSION
from automnist.store.store import Store

__all__ = ["Store", "use_store", "DB_NAME", "SCHEMA_VERSION", "RUN_KINDS", "RUN_STATUSES", "BASE_METRICS"]
