"""The results store: runs, trials, folds and per-epoch history in one SQLite file.

Laid out like optuna's ``storages/_rdb``: :mod:`~automnist.store.schema` (the tables and
the schema version), :mod:`~automnist.store.connection` (one process's SQLite connection
and its transactions), :mod:`~automnist.store.store` (:class:`Store`: what is done with
the tables), :mod:`~automnist.store.codec` (values in and out of the rows) and
:mod:`~automnist.store.frames` (the DataFrames the later stages consume).
"""

from __future__ import annotations

from automnist.store.frames import BASE_METRICS
from automnist.store.schema import DB_NAME, RUN_KINDS, RUN_STATUSES, SCHEMA_VERSION
from automnist.store.store import Store

__all__ = ["Store", "DB_NAME", "SCHEMA_VERSION", "RUN_KINDS", "RUN_STATUSES", "BASE_METRICS"]
