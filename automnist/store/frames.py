"""The DataFrames the store hands to the later stages (``aggregate``, ``plots``,
``report``): one row per run, per trial, per fold, per epoch and metric.

Each builder reads inside the caller's read transaction, so a frame is one snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from automnist.spec import value_label
from automnist.store.codec import json_object, load_metrics
from automnist.store.schema import TRIAL_COLUMNS, folds, history, runs, trials

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BASE_METRICS", "folds_frame", "history_frame", "runs_frame", "trials_frame"]

#: Metric columns every trials / folds frame has (NaN when a trial has no such metric).
BASE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")

#: ``(name, run_id, strategy)`` of each run a frame covers, in frame order.
_RunIds = list[tuple[str, int, str]]


def runs_frame(db: Connection) -> pd.DataFrame:
    """One row per run, oldest first (see :meth:`automnist.store.Store.runs_frame`)."""
    r, t = runs.c, trials.c
    rows = db.execute(
        select(r.name, r.run_id, r.kind, r.strategy, r.dataset, r.spec_name, r.spec_hash, r.seed, r.status,
               r.started_at, r.ended_at, func.count(t.trial_id),
               func.coalesce(func.sum(case((t.status == "ok", 1), else_=0)), 0))
        .select_from(runs.outerjoin(trials, t.run_id == r.run_id)).group_by(r.run_id).order_by(r.run_id)
    ).all()
    names = ("run", "run_id", "kind", "strategy", "dataset", "spec_name", "spec_hash", "seed", "status",
             "started_at", "ended_at", "n_trials", "n_ok")
    dtypes = (None, "int64", None, None, None, None, None, "int64", None, "float64", "float64", "int64", "int64")
    return _columns_frame(rows, names, dtypes)


def trials_frame(db: Connection, runs: _RunIds) -> pd.DataFrame:
    """One row per trial of ``runs`` (see :meth:`automnist.store.Store.trials_frame`)."""
    rows: list[dict[str, Any]] = []
    for name, run_id, strategy in runs:
        n_folds = dict(db.execute(
            select(folds.c.trial_id, func.count(folds.c.fold.distinct())).where(folds.c.run_id == run_id)
            .group_by(folds.c.trial_id)
        ).all())
        for t in db.execute(
            select(*(trials.c[c] for c in TRIAL_COLUMNS)).where(trials.c.run_id == run_id)
            .order_by(trials.c.number, trials.c.trial_id)
        ):
            rows.append({"run": name, "strategy": strategy, **dict(zip(TRIAL_COLUMNS, t)),
                         "n_folds": n_folds.get(t[0], 0)})
    params = [json_object(r["params"], f"run {r['run']!r}: trial {r['trial_id']!r}: params") for r in rows]
    metrics = [load_metrics(r["metrics"], f"run {r['run']!r}: trial {r['trial_id']!r}: metrics") for r in rows]
    param_names = _union(p.keys() for p in params)
    extra = [m for m in _union(m.keys() for m in metrics) if m not in BASE_METRICS]

    def column(key: str, dtype: str | None) -> tuple[list[Any], str | None]:
        return [r[key] for r in rows], dtype

    data: dict[str, tuple[list[Any], str | None]] = {
        "run": column("run", None),
        "strategy": column("strategy", None),
        "trial_id": column("trial_id", None),
        "number": column("number", "int64"),
        "status": column("status", None),
    }
    for p in param_names:
        values = [_param_value(ps.get(p)) for ps in params]
        data[f"param_{p}"] = (values, _param_dtype(values))
    for m in (*BASE_METRICS, *extra):
        values = [ms.get(m, math.nan) for ms in metrics]
        data[m] = (values, "float64" if all(_is_number(v) for v in values) else None)
    data.update({
        "n_folds": column("n_folds", "int64"),
        "duration_s": column("duration_s", "float64"),
        "n_params": column("n_params", "Int64"),
        "epochs": column("epochs", "int64"),
        "max_epochs": column("max_epochs", "int64"),
        "images": column("images", "Int64"),
        "stop_reason": column("stop_reason", None),
        "seed": column("seed", "int64"),
        "error": column("error", None),
        "started_at": column("started_at", "float64"),
        "ended_at": column("ended_at", "float64"),
    })
    return _frame(data)


def folds_frame(db: Connection, runs: _RunIds) -> pd.DataFrame:
    """One row per fold of the cross-validated trials of ``runs`` (see
    :meth:`automnist.store.Store.folds_frame`)."""
    import pandas as pd

    f, t = folds.c, trials.c
    rows: list[tuple[Any, ...]] = []
    for pos, (name, run_id, _) in enumerate(runs):
        rows.extend(
            (pos, number, name, trial_id, fold, metric, value)
            for number, trial_id, fold, metric, value in db.execute(
                select(t.number, f.trial_id, f.fold, f.metric, f.value)
                .join_from(folds, trials, (t.run_id == f.run_id) & (t.trial_id == f.trial_id))
                .where(f.run_id == run_id)
            )
        )
    metrics = [*BASE_METRICS, *sorted({r[5] for r in rows} - set(BASE_METRICS))]
    if not rows:
        return _frame({"run": ([], None), "trial_id": ([], None), "fold": ([], "int64"),
                       **{m: ([], "float64") for m in metrics}})
    long = pd.DataFrame(rows, columns=["pos", "number", "run", "trial_id", "fold", "metric", "value"])
    long["value"] = long["value"].astype("float64")
    wide = long.pivot(index=["pos", "number", "run", "trial_id", "fold"], columns="metric", values="value")
    wide = wide.reindex(columns=metrics).reset_index().drop(columns=["pos", "number"])
    wide.columns.name = None
    return wide


def history_frame(db: Connection, runs: _RunIds) -> pd.DataFrame:
    """Per-epoch metrics of the trials of ``runs`` in long form (see
    :meth:`automnist.store.Store.history_frame`)."""
    h, t = history.c, trials.c
    rows: list[tuple[Any, ...]] = []
    for name, run_id, _ in runs:
        rows.extend(
            (name, *r)
            for r in db.execute(
                select(h.trial_id, h.fold, h.epoch, h.metric, h.value)
                .join_from(history, trials, (t.run_id == h.run_id) & (t.trial_id == h.trial_id))
                .where(h.run_id == run_id).order_by(t.number, h.trial_id, h.seq)
            )
        )
    names = ("run", "trial_id", "fold", "epoch", "metric", "value")
    dtypes = (None, None, "int64", "int64", None, "float64")
    return _columns_frame(rows, names, dtypes)


def _columns_frame(rows: list[tuple[Any, ...]], names: tuple[str, ...],
                   dtypes: tuple[str | None, ...]) -> pd.DataFrame:
    """A frame from query rows, one named column (with its dtype) per row position."""
    columns = list(zip(*rows)) if rows else [()] * len(names)
    return _frame({n: (list(c), d) for n, c, d in zip(names, columns, dtypes)})


def _union(groups: Iterable[Iterable[str]]) -> list[str]:
    """Distinct names in order of first appearance."""
    out: dict[str, None] = {}
    for group in groups:
        out.update(dict.fromkeys(group))
    return list(out)


def _param_value(value: Any) -> Any:
    """A hyperparameter cell: lists and dicts as their :func:`automnist.spec.value_label`."""
    return value_label(value) if isinstance(value, (list, dict)) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _param_dtype(values: list[Any]) -> str | None:
    """The column dtype for a hyperparameter's values (None: let pandas infer)."""
    present = [v for v in values if v is not None]
    complete = len(present) == len(values)
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return "bool" if complete else "boolean"
    if all(_is_number(v) for v in present):
        if all(isinstance(v, int) for v in present):
            return "int64" if complete else "Int64"
        return "float64"
    return None


def _frame(columns: dict[str, tuple[list[Any], str | None]]) -> pd.DataFrame:
    import pandas as pd

    data = {}
    for name, (values, dtype) in columns.items():
        if dtype is None:
            data[name] = pd.Series(values, dtype=object).infer_objects()
        else:
            data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(columns))
