"""Learning-rate range-test curves from the store's frames (runs of kind ``lr_find``).

The numbers behind :func:`automnist.plots.plot_lr_find`; the test itself is
:mod:`automnist.experiments.lr_find`.
"""

from __future__ import annotations

import math

import pandas as pd

from automnist.records import TrialRecord

__all__ = ["CURVE_METRICS", "lr_find_curves", "records_curves"]

#: The per-batch history metrics of a range test.
CURVE_METRICS = ("lr", "loss", "smoothed_loss")


def records_curves(records: list[TrialRecord]) -> pd.DataFrame:
    """:func:`lr_find_curves` of range-test records not (yet) read back from a store.

    Parameters
    ----------
    records : list of TrialRecord
        One per optimizer, with the per-batch history of :func:`automnist.experiments.lr_find.lr_find`.

    Returns
    -------
    DataFrame
        As :func:`lr_find_curves`, with ``run`` empty.
    """
    hist = pd.DataFrame(
        [{"run": "", "trial_id": r.trial_id, **h} for r in records for h in r.history],
        columns=["run", "trial_id", "fold", "epoch", "metric", "value"],
    )
    trials = pd.DataFrame({"run": [""] * len(records), "trial_id": [r.trial_id for r in records],
                           "suggested_lr": [r.metrics.get("suggested_lr", math.nan) for r in records]})
    return lr_find_curves(hist, trials)


def lr_find_curves(history: pd.DataFrame, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """The range-test curves of ``lr_find`` run(s) in wide form.

    Parameters
    ----------
    history : DataFrame
        ``Store.history_frame(runs)`` of lr_find runs (metrics ``lr``, ``loss``,
        ``smoothed_loss`` per batch).
    trials : DataFrame, optional
        ``Store.trials_frame(runs)``; adds each optimizer's ``suggested_lr``.

    Returns
    -------
    DataFrame
        ``run, optimizer, batch, lr, loss, smoothed_loss`` (+ ``suggested_lr``), one row
        per batch, ordered by run, optimizer (as tested) and batch.
    """
    columns = ["run", "optimizer", "batch", *CURVE_METRICS]
    hist = history[history["metric"].isin(CURVE_METRICS)]
    if hist.empty:
        out = pd.DataFrame(columns=columns)
    else:
        order = {key: i for i, key in enumerate(dict.fromkeys(zip(hist["run"], hist["trial_id"])))}
        wide = hist.pivot_table(index=["run", "trial_id", "epoch"], columns="metric", values="value",
                                aggfunc="first", sort=False).reset_index()
        wide.columns.name = None
        wide["_order"] = [order[(r, t)] for r, t in zip(wide["run"], wide["trial_id"])]
        wide = wide.sort_values(["_order", "epoch"], kind="stable").drop(columns="_order")
        out = wide.rename(columns={"trial_id": "optimizer", "epoch": "batch"}).reindex(columns=columns)
        out = out.reset_index(drop=True)
    if trials is not None and "suggested_lr" in trials:
        sugg = trials[["run", "trial_id", "suggested_lr"]].rename(columns={"trial_id": "optimizer"})
        out = out.merge(sugg, on=["run", "optimizer"], how="left")
    return out
