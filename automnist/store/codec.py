"""Values in and out of the store: run names, JSON columns, metrics (NaN/inf stored as
null), and trial records to and from table rows."""

from __future__ import annotations

import functools
import json
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from automnist.errors import StoreError
from automnist.records import STOP_REASONS, TRIAL_STATUSES, TrialRecord
from automnist.store.schema import TRIAL_COLUMNS, folds, history, rungs, trials

__all__ = ["DamagedStore", "as_int", "check_name", "dumps", "TrialRows", "encode_trial", "json_object", "load_metrics",
           "read_trials", "run_list", "write_trial"]


class DamagedStore(StoreError):
    """A value read from the store is not what automnist writes (the reader adds where)."""


_HISTORY_KEYS = frozenset(("fold", "epoch", "metric", "value"))
#: Metrics that are numbers (or null) in every trial; anything else read back is damage.
_NUMBER_METRICS = frozenset(("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"))


def check_name(name: Any) -> None:
    """StoreError unless ``name`` is a non-empty string (a run name)."""
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"run name: must be a non-empty string, got {name!r}")


def run_list(runs: str | Iterable[str]) -> list[str]:
    """One run name or several as a list of distinct names, in order (StoreError when malformed)."""
    if isinstance(runs, str):
        names = [runs]
    elif isinstance(runs, Iterable) and not isinstance(runs, Mapping):
        names = list(runs)
    else:
        raise StoreError(f"runs: must be a run name or a list of run names, got {runs!r}")
    for name in names:
        check_name(name)
    return list(dict.fromkeys(names))


def as_int(value: Any, what: str, *, optional: bool = False) -> int | None:
    """``value`` as an int (None allowed when ``optional``); ValueError naming ``what`` otherwise."""
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


def dumps(value: Any, what: str) -> str:
    """``value`` as JSON text (numpy values as plain ones); ValueError naming ``what`` when it is not JSON data."""
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


def _real_in(value: Any, what: str) -> float | None:
    if value is None:
        return None
    f = _as_float(value, what)
    return f if not math.isnan(f) else None


def _real_out(value: float | None) -> float:
    return math.nan if value is None else value


def _stop_reason(value: Any, where: str) -> str | None:
    if value is not None and value not in STOP_REASONS:
        raise ValueError(f"{where}: stop_reason must be None or one of {', '.join(STOP_REASONS)}, got {value!r}")
    return value


def _encode_rungs(record: TrialRecord) -> list[tuple[Any, ...]]:
    """Rung rows ``(rung, epochs, images, metrics JSON)`` of ``record``.

    Raises
    ------
    ValueError
        If a rung lacks an integer ``rung`` or ``epochs`` or repeats a rung number.
    """
    where = f"trial {record.trial_id!r}"
    rows: list[tuple[Any, ...]] = []
    for i, rung in enumerate(record.rungs):
        if not isinstance(rung, Mapping):
            raise ValueError(f"{where}: rungs[{i}] must be a dict, got {rung!r}")
        number = as_int(rung.get("rung"), f"{where}: rungs[{i}].rung")
        if any(r[0] == number for r in rows):
            raise ValueError(f"{where}: rungs[{i}]: rung {number} appears twice")
        metrics = {k: v for k, v in rung.items() if k not in ("rung", "epochs", "images")}
        rows.append((number, as_int(rung.get("epochs"), f"{where}: rungs[{i}].epochs"),
                     as_int(rung.get("images"), f"{where}: rungs[{i}].images", optional=True),
                     dumps(_finite(metrics), f"{where}: rungs[{i}]")))
    return rows


class TrialRows(NamedTuple):
    """A trial record as table rows (see :func:`encode_trial`)."""

    trial_id: str
    trial: tuple[Any, ...]
    folds: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    rungs: list[tuple[Any, ...]]


def encode_trial(record: TrialRecord) -> TrialRows:
    """Validate ``record`` and turn it into the trial row (:data:`TRIAL_COLUMNS` order),
    fold rows ``(fold, metric, value)``, history rows ``(fold, epoch, metric, value)`` and
    rung rows ``(rung, epochs, images, metrics JSON)``.

    Raises
    ------
    ValueError
        If the record is malformed; the message names the trial and the field.
    """
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
        as_int(record.number, f"{where}: number"),
        dumps(dict(record.params), f"{where}: params"),
        record.status,
        dumps(_finite(dict(record.metrics)), f"{where}: metrics"),
        _as_float(record.duration_s, f"{where}: duration_s"),
        as_int(record.n_params, f"{where}: n_params", optional=True),
        as_int(record.seed, f"{where}: seed"),
        as_int(record.epochs, f"{where}: epochs"),
        record.error,
        _as_float(record.started_at, f"{where}: started_at"),
        _as_float(record.ended_at, f"{where}: ended_at"),
        as_int(record.max_epochs, f"{where}: max_epochs"),
        as_int(record.images, f"{where}: images", optional=True),
        _stop_reason(record.stop_reason, where),
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
            as_int(row["fold"], f"{where}: history[{i}].fold"),
            as_int(row["epoch"], f"{where}: history[{i}].epoch"),
            row["metric"],
            _real_in(row["value"], f"{where}: history[{i}].value"),
        ))
    return TrialRows(tid, trial, folds, history, _encode_rungs(record))


def write_trial(db: Connection, run_id: int, rows: TrialRows) -> None:
    """Write trial ``rows.trial_id`` of run ``run_id`` once: its row is inserted or, when the
    run has it already, replaced (``ON CONFLICT DO UPDATE``, SQLite and PostgreSQL alike),
    and its folds, history and rungs replaced; inside the caller's write transaction."""
    exists, upsert, deletes = _write_statements(db.dialect.name)
    key = {"run_id": run_id, "trial_id": rows.trial_id}
    if db.execute(exists, key).first() is not None:  # a rewritten trial: its rows go first
        for statement in deletes:
            db.execute(statement, key)
    db.execute(upsert, {**key, **dict(zip(TRIAL_COLUMNS, rows.trial))})
    children = (
        (folds, [dict(key, fold=f, metric=m, value=v) for f, m, v in rows.folds]),
        (history, [dict(key, seq=seq, fold=f, epoch=e, metric=m, value=v)
                   for seq, (f, e, m, v) in enumerate(rows.history)]),
        (rungs, [dict(key, rung=r, epochs=e, images=i, metrics=m) for r, e, i, m in rows.rungs]),
    )
    for table, values in children:
        if values:
            db.execute(_INSERTS[table.name], values)


@functools.cache
def _write_statements(dialect: str) -> tuple[Any, Any, tuple[Any, ...]]:
    """Whether a trial exists, the trial upsert, and the deletes of a trial's folds, history
    and rungs (built once: most of a write's time was building them)."""
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(trials)
    upsert = insert.on_conflict_do_update(
        index_elements=[trials.c.run_id, trials.c.trial_id],
        set_={c: insert.excluded[c] for c in TRIAL_COLUMNS if c != "trial_id"},
    )
    deletes = tuple(delete(t).where(t.c.run_id == bindparam("run_id"), t.c.trial_id == bindparam("trial_id"))
                    for t in (rungs, history, folds))
    exists = select(trials.c.number).where(trials.c.run_id == bindparam("run_id"),
                                           trials.c.trial_id == bindparam("trial_id"))
    return exists, upsert, deletes


_INSERTS = {t.name: t.insert() for t in (folds, history, rungs)}


def json_object(value_text: Any, what: str) -> dict[str, Any]:
    """A stored JSON object (a dict), or StoreError naming ``what`` (bad JSON, not an object)."""
    try:
        value = json.loads(value_text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise DamagedStore(f"{what}: invalid JSON ({type(exc).__name__})") from exc
    if not isinstance(value, dict):
        raise DamagedStore(f"{what}: a JSON object was expected, got {type(value).__name__}")
    return value


def load_metrics(value_text: Any, what: str = "metrics") -> dict[str, Any]:
    """A stored metrics JSON object, with null (a NaN or infinite metric) read back as NaN.

    Raises
    ------
    StoreError
        If the text is not a JSON object, or a base metric (``loss``, ``val_accuracy``...)
        is neither a number nor null.
    """
    metrics = json_object(value_text, what)
    for name in _NUMBER_METRICS.intersection(metrics):
        value = metrics[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DamagedStore(f"{what}: {name} must be a number, got {type(value).__name__}")
    return {k: math.nan if v is None else v for k, v in metrics.items()}


def read_trials(db: Connection, run_id: int) -> list[TrialRecord]:
    """The trial records of run ``run_id`` (ordered by number) from its trial, fold and
    history rows, inside the caller's read transaction."""
    def of_run(table: Table, *columns: str, order: tuple[str, ...]) -> list[Any]:
        return db.execute(select(*(table.c[c] for c in columns)).where(table.c.run_id == run_id)
                          .order_by(*(table.c[c] for c in order))).all()

    trial_rows = of_run(trials, *TRIAL_COLUMNS, order=("number", "trial_id"))
    fold_rows = of_run(folds, "trial_id", "fold", "metric", "value", order=("trial_id", "fold"))
    history_rows = of_run(history, "trial_id", "fold", "epoch", "metric", "value", order=("trial_id", "seq"))
    rung_map: dict[str, list[dict[str, Any]]] = {}
    for trial_id, rung, epochs, images, metrics in of_run(rungs, "trial_id", "rung", "epochs", "images", "metrics",
                                                          order=("trial_id", "rung")):
        rung_map.setdefault(trial_id, []).append({"rung": rung, "epochs": epochs, "images": images,
                                                  **load_metrics(metrics, f"trial {trial_id!r}: rung {rung}")})
    fold_map: dict[str, dict[int, dict[str, Any]]] = {}
    for trial_id, fold, metric, value in fold_rows:
        entry = fold_map.setdefault(trial_id, {}).setdefault(fold, {"fold": fold})
        entry[metric] = _real_out(value)
    history_map: dict[str, list[dict[str, Any]]] = {}
    for trial_id, fold, epoch, metric, value in history_rows:
        history_map.setdefault(trial_id, []).append(
            {"fold": fold, "epoch": epoch, "metric": metric, "value": _real_out(value)}
        )
    out = []
    for row in trial_rows:
        t = dict(zip(TRIAL_COLUMNS, row))
        tid = t["trial_id"]
        out.append(TrialRecord(**{
            **t,
            "params": json_object(t["params"], f"trial {tid!r}: params"),
            "metrics": load_metrics(t["metrics"], f"trial {tid!r}: metrics"),
            "folds": list(fold_map.get(tid, {}).values()),
            "history": history_map.get(tid, []),
            "rungs": rung_map.get(tid, []),
        }))
    return out
