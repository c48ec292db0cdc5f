"""The results store: runs, trials, folds and per-epoch history in one SQLite file or
one PostgreSQL database (through SQLAlchemy Core; the tables are in
:mod:`automnist.store.schema`).

The store is the only thing two processes share (a search and its report, or several
Keras Tuner workers).  It is append-only in spirit and built to survive being killed:

* every :meth:`Store.add_trial` is one transaction, so a killed process loses at most
  the trial in flight, and re-adding the same ``(run, trial_id)`` replaces that trial
  (a resumed search never creates duplicates);
* SQLite files are in WAL mode with a busy timeout and writes ``BEGIN IMMEDIATE``, so
  several processes on one machine can write to one file; several machines share a
  PostgreSQL database (``postgresql://user@host:port/db``);
* folds and history are kept in long form and pivoted by pandas on the way out; the
  frames (``trials_frame``, ``folds_frame``, ``history_frame``, ``runs_frame``) are the
  contract the later stages (``aggregate``, ``plots``, ``report``) consume.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection as DB
from sqlalchemy.exc import IntegrityError

from automnist.errors import StoreError
from automnist.records import TrialRecord
from automnist.store import frames
from automnist.store.codec import (
    as_int, check_name, dumps, encode_trial, json_object, read_trials, run_list, write_trial,
)
from automnist.store.connection import Connection
from automnist.store.location import selected_store, store_url
from automnist.store.schema import DB_NAME, RUN_COLUMNS, RUN_KINDS, RUN_STATUSES, runs

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Store"]

_RUN_ID = select(runs.c.run_id).where(runs.c.name == bindparam("name"))


class Store:
    """A results store: one SQLite file or one PostgreSQL database.

    Parameters
    ----------
    path : str or Path
        The store: a file path or ``sqlite:///path`` (the file, its parent directory and
        the tables are created when missing), or ``postgresql://user@host:port/db`` (the
        database must exist; the tables are created when missing).
    create : bool, default True
        False for read-only commands: a missing file or an empty database is a
        :class:`StoreError` ("no results store there") and nothing is created.

    Attributes
    ----------
    path : Path or None
        The SQLite file (None for PostgreSQL).
    location, where : str
        The store as a path or URL (to open it again), and as shown in messages.

    Raises
    ------
    StoreError
        If the store cannot be opened, is not an automnist store, is damaged, or was
        written by a newer automnist (schema version above :data:`SCHEMA_VERSION`).

    Examples
    --------
    >>> with Store.at("results") as store:                      # doctest: +SKIP
    ...     store.create_run("digits_random", strategy="random")
    ...     store.add_trial("digits_random", record)
    ...     frame = store.trials_frame("digits_random")
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        url = store_url(path)
        sqlite = url.get_backend_name() == "sqlite"
        self.path = Path(url.database) if sqlite else None
        self.location = str(self.path) if self.path is not None else url.render_as_string(hide_password=False)
        if self.path is not None and not create and not self.path.is_file():
            raise StoreError(f"no results store at {self.path} (check --results or --store)")
        if self.path is not None and create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the results directory: {exc}") from exc
        self._connection = Connection(url, create=create)
        self.where = self._connection.where

    @classmethod
    def at(cls, results_dir: str | Path, *, create: bool = True) -> Store:
        """The store of a results directory: ``<results_dir>/automnist.db``, or the store
        selected with :func:`automnist.store.use_store` (the CLI's ``--store``)."""
        return cls(selected_store() or Path(results_dir) / DB_NAME, create=create)

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    def __reduce__(self) -> tuple[type[Store], tuple[str]]:
        # A Store sent to another process reopens the same store there.
        return (type(self), (self.location,))

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent).  Committed trials are already on disk."""
        self._connection.close()

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
        check_name(name)
        if kind not in RUN_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(RUN_KINDS)}, got {kind!r}")
        row = dict(name=name, kind=kind, spec_name=spec_name, spec_text=spec_text, spec_hash=spec_hash,
                   strategy=strategy, dataset=dataset, seed=as_int(seed, "seed"), config=dumps(config or {}, "config"),
                   versions=dumps(versions or {}, "versions"), started_at=time.time())
        try:
            with self._connection.write() as db:
                cur = db.execute(runs.insert().values(row))
        except IntegrityError as exc:
            raise StoreError(f"a run named {name!r} already exists in {self.where}; choose another name") from exc
        return int(cur.inserted_primary_key[0])

    def get_run(self, name: str) -> dict[str, Any] | None:
        """All columns of run ``name`` (``config`` and ``versions`` decoded), or None.

        Raises
        ------
        StoreError
            If ``name`` is empty or not a string.
        """
        check_name(name)
        with self._connection.read() as db:
            row = db.execute(select(runs).where(runs.c.name == name)).first()
            if row is None:
                return None
            run = dict(zip(RUN_COLUMNS, row))
            return {**run, **{k: json_object(run[k], f"run {name!r}: {k}") for k in ("config", "versions")}}

    def require_run(self, name: str) -> dict[str, Any]:
        """Like :meth:`get_run`, but a missing run raises :class:`StoreError` listing the known runs."""
        run = self.get_run(name)
        if run is None:
            raise self._unknown([name])
        return run

    def run_names(self) -> list[str]:
        """Names of all runs, oldest first."""
        with self._connection.read() as db:
            return list(db.execute(select(runs.c.name).order_by(runs.c.run_id)).scalars())

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
        with self._connection.write() as db:
            row = db.execute(select(runs.c.config).where(runs.c.name == name)).first()
            if row is None:
                raise self._unknown([name], db)
            config = {**json_object(row[0], f"run {name!r}: config"), **changes}
            db.execute(update(runs).where(runs.c.name == name).values(config=dumps(config, "config")))

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
        check_name(name)
        if status not in RUN_STATUSES:
            raise ValueError(f"status: must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        ended = None if status == "running" else time.time()
        with self._connection.write() as db:
            cur = db.execute(update(runs).where(runs.c.name == name).values(status=status, ended_at=ended))
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
        check_name(run)
        if not isinstance(record, TrialRecord):
            raise TypeError(f"record: must be a TrialRecord, got {type(record).__name__}")
        rows = encode_trial(record)  # a malformed record fails before the write transaction
        with self._connection.write() as db:
            found = db.execute(_RUN_ID, {"name": run}).first()
            if found is None:
                raise self._unknown([run], db)
            write_trial(db, found[0], rows)

    def get_trials(self, run: str) -> list[TrialRecord]:
        """The trials of ``run`` ordered by number, equal to the records added.

        Stored JSON turns tuples into lists, NaN/inf metrics come back as NaN, and folds
        come back ordered by fold number.

        Raises
        ------
        StoreError
            If there is no run ``run``.
        """
        check_name(run)
        with self._connection.read() as db:
            return read_trials(db, self._run_ids([run], db)[0][1])

    # ------------------------------------------------------------------ frames

    def runs_frame(self) -> pd.DataFrame:
        """One row per run, oldest first.

        Returns
        -------
        DataFrame
            ``run, run_id, kind, strategy, dataset, spec_name, spec_hash, seed, status,
            started_at, ended_at`` (NaN while running), ``n_trials``, ``n_ok``.
        """
        with self._connection.read() as db:
            return frames.runs_frame(db)

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
        return self._frame(frames.trials_frame, runs)

    def folds_frame(self, runs: str | list[str]) -> pd.DataFrame:
        """One row per fold of the trials of ``runs`` that were cross-validated.

        Returns
        -------
        DataFrame
            ``run, trial_id, fold``, the metric columns :data:`BASE_METRICS` (NaN when
            absent) and every other fold metric present, sorted by name.  Rows are in
            the order of ``runs``, then trial number, then fold.  An unknown run name
            raises :class:`StoreError`.
        """
        return self._frame(frames.folds_frame, runs)

    def history_frame(self, runs: str | list[str]) -> pd.DataFrame:
        """Per-epoch metrics of the trials of ``runs`` in tidy long form.

        Returns
        -------
        DataFrame
            ``run, trial_id, fold, epoch, metric, value``; rows in the order of ``runs``,
            then trial number, then the order the trial recorded them.  An unknown run name
            raises :class:`StoreError`.
        """
        return self._frame(frames.history_frame, runs)

    # ------------------------------------------------------------------ internals

    def _frame(self, build: Callable[[DB, list[tuple[str, int, str]]], pd.DataFrame],
               runs: str | list[str]) -> pd.DataFrame:
        """``build(db, run_ids)`` for the runs named in ``runs``, in one read transaction."""
        with self._connection.read() as db:
            return build(db, self._run_ids(run_list(runs), db))

    def _run_ids(self, names: list[str], db: DB) -> list[tuple[str, int, str]]:
        """``(name, run_id, strategy)`` for each name, in order; unknown names raise."""
        found = {}
        for name in names:
            row = db.execute(select(runs.c.run_id, runs.c.strategy).where(runs.c.name == name)).first()
            if row is not None:
                found[name] = row
        missing = [n for n in names if n not in found]
        if missing:
            raise self._unknown(missing, db)
        return [(n, *found[n]) for n in names]

    def _unknown(self, names: list[str], db: DB | None = None) -> StoreError:
        known = self.run_names() if db is None else list(db.execute(select(runs.c.name).order_by(runs.c.run_id)).scalars())
        what = f"no run named {names[0]!r}" if len(names) == 1 else f"no runs named {', '.join(map(repr, names))}"
        return StoreError(f"{what} in {self.where}; known runs: {', '.join(known) or 'none'}")
