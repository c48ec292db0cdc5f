"""Values in and out of the store: run names, JSON columns, metrics (NaN/inf stored as
null), and trial records to and from table rows."""

from __future__ import annotations

import json
import math
import numbers
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from automnist.errors import StoreError
from automnist.records import STOP_REASONS, TRIAL_STATUSES, TrialRecord
from automnist.store.schema import TRIAL_COLUMNS

__all__ = ["as_int", "check_name", "dumps", "TrialRows", "encode_trial", "load_metrics", "read_trials", "run_list",
           "write_trial"]

_HISTORY_KEYS = frozenset(("fold", "epoch", "metric", "value"))


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


def load_metrics(text: str) -> dict[str, Any]:
    """A stored metrics JSON object, with null (a NaN or infinite metric) read back as NaN."""
    return {k: math.nan if v is None else v for k, v in json.loads(text).items()}


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


def write_trial(db: sqlite3.Connection, run_id: int, rows: TrialRows) -> None:
    """Replace trial ``rows.trial_id`` of run ``run_id`` (its row, folds, history and rungs),
    inside the caller's write transaction."""
    key = (run_id, rows.trial_id)
    for table in ("rungs", "history", "folds", "trials"):
        db.execute(f"DELETE FROM {table} WHERE run_id = ? AND trial_id = ?", key)
    db.execute(
        f"INSERT INTO trials (run_id, {', '.join(TRIAL_COLUMNS)}) VALUES (?, {', '.join('?' * len(TRIAL_COLUMNS))})",
        (run_id, *rows.trial),
    )
    db.executemany("INSERT INTO folds VALUES (?, ?, ?, ?, ?)", [(*key, *f) for f in rows.folds])
    db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(*key, seq, *h) for seq, h in enumerate(rows.history)])
    db.executemany("INSERT INTO rungs VALUES (?, ?, ?, ?, ?, ?)", [(*key, *r) for r in rows.rungs])


def read_trials(db: sqlite3.Connection, run_id: int) -> list[TrialRecord]:
    """The trial records of run ``run_id`` (ordered by number) from its trial, fold and
    history rows, inside the caller's read transaction."""
    trial_rows = db.execute(
        f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials WHERE run_id = ? ORDER BY number, trial_id", (run_id,)
    ).fetchall()
    fold_rows = db.execute(
        "SELECT trial_id, fold, metric, value FROM folds WHERE run_id = ? ORDER BY trial_id, fold", (run_id,)
    ).fetchall()
    history_rows = db.execute(
        "SELECT trial_id, fold, epoch, metric, value FROM history WHERE run_id = ? ORDER BY trial_id, seq", (run_id,)
    ).fetchall()
    rungs: dict[str, list[dict[str, Any]]] = {}
    for trial_id, rung, epochs, images, metrics in db.execute(
        "SELECT trial_id, rung, epochs, images, metrics FROM rungs WHERE run_id = ? ORDER BY trial_id, rung", (run_id,)
    ):
        rungs.setdefault(trial_id, []).append({"rung": rung, "epochs": epochs, "images": images,
                                               **load_metrics(metrics)})
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
    for row in trial_rows:
        t = dict(zip(TRIAL_COLUMNS, row))
        out.append(TrialRecord(
            trial_id=t["trial_id"],
            number=t["number"],
            params=json.loads(t["params"]),
            status=t["status"],
            metrics=load_metrics(t["metrics"]),
            folds=list(folds.get(t["trial_id"], {}).values()),
            history=history.get(t["trial_id"], []),
            duration_s=t["duration_s"],
            n_params=t["n_params"],
            seed=t["seed"],
            epochs=t["epochs"],
            error=t["error"],
            started_at=t["started_at"],
            ended_at=t["ended_at"],
            max_epochs=t["max_epochs"],
            images=t["images"],
            stop_reason=t["stop_reason"],
            rungs=rungs.get(t["trial_id"], []),
        ))
    return out
