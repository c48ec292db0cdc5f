"""Numbers for the trial plots: learning curves of the best trials and parallel
coordinates of all of them (drawn by :mod:`automnist.plots`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from automnist.aggregate.params import (
    PARAM_PREFIX,
    cell_label,
    check_objective,
    ok_trials,
    param_name,
    score_keys,
    sorted_values,
    varying_params,
)
from automnist.aggregate.trials import leaderboard

__all__ = ["learning_curve_data", "parallel_data"]


def learning_curve_data(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    k: int = 5,
    objective: str = "val_accuracy",
    direction: str = "max",
) -> pd.DataFrame:
    """Per-epoch train/validation curves of the ``k`` best trials.

    With k-fold CV the value at each epoch is the mean over folds.

    Returns
    -------
    DataFrame
        ``rank``, ``run``, ``trial_id``, ``label`` (``"#rank run/trial"``),
        ``quantity`` (``loss`` or ``accuracy``), ``split`` (``train`` or
        ``validation``), ``epoch``, ``value``; sorted by rank, quantity, split, epoch.
    """
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k!r}")
    columns = ["rank", "run", "trial_id", "label", "quantity", "split", "epoch", "value"]
    board = leaderboard(trials, objective, direction)
    top = board[board[objective].notna()].head(k)[["rank", "run", "trial_id"]]
    metrics = {"loss": ("loss", "train"), "accuracy": ("accuracy", "train"),
               "val_loss": ("loss", "validation"), "val_accuracy": ("accuracy", "validation")}
    if top.empty or history.empty:
        return pd.DataFrame(columns=columns)
    hist = history[history["metric"].isin(list(metrics))]
    hist = hist.merge(top, on=["run", "trial_id"], how="inner")
    curves = (hist.groupby(["rank", "run", "trial_id", "metric", "epoch"], sort=False)["value"]
              .mean().reset_index())
    curves["quantity"] = curves["metric"].map(lambda m: metrics[m][0])
    curves["split"] = curves["metric"].map(lambda m: metrics[m][1])
    multi = trials["run"].nunique() > 1
    curves["label"] = [f"#{r} {run}/{t}" if multi else f"#{r} {t}"
                       for r, run, t in zip(curves["rank"], curves["run"], curves["trial_id"])]
    curves = curves.sort_values(["rank", "run", "trial_id", "quantity", "split", "epoch"], kind="stable")
    return curves[columns].reset_index(drop=True)


def parallel_data(
    trials: pd.DataFrame,
    objective: str = "val_accuracy",
    direction: str = "max",
    max_lines: int = 300,
    seed: int = 0,
) -> pd.DataFrame:
    """Numbers for a parallel-coordinates plot of the ok trials.

    Every varying hyperparameter and the objective become an axis.  Numeric axes are
    min-max normalised to [0, 1] (of ``log10`` of the values when all are positive and
    span at least a factor 100, e.g. a learning rate); categorical axes place their
    values, in natural order, evenly on [0, 1].  With more than ``max_lines`` trials, the best ``max_lines // 4`` are kept
    plus a random sample (``seed``) of the rest.

    Returns
    -------
    DataFrame
        Tidy: ``run``, ``trial_id``, ``objective`` (the trial's value, for colour),
        ``axis`` (hyperparameter name or the objective), ``kind`` (``numeric`` or
        ``categorical``), ``raw`` (the value as text, 4 significant digits for numbers),
        ``position`` (in [0, 1]).
        Axes appear in the order hyperparameters, then objective.
    """
    check_objective(trials, objective, direction)
    columns = ["run", "trial_id", "objective", "axis", "kind", "raw", "position"]
    ok = ok_trials(trials, objective)
    if len(ok) > max_lines:
        ranked = ok.iloc[np.argsort(-score_keys(ok[objective], direction).to_numpy(), kind="stable")]
        n_top = max_lines // 4
        rest = ranked.iloc[n_top:].sample(n=max_lines - n_top, random_state=seed)
        ok = pd.concat([ranked.iloc[:n_top], rest])
    axes = [PARAM_PREFIX + p for p in varying_params(ok, objective)] + [objective]
    frames = []
    for column in axes:
        values = ok[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:
            v = values.astype(float)
            raw = v.map(lambda x: f"{x:.4g}")
            if v.min() > 0 and v.max() / v.min() >= 100:
                v = np.log10(v)
            lo, hi = v.min(), v.max()
            pos = (v - lo) / (hi - lo) if hi > lo else v * 0 + 0.5
        else:
            text = values.map(lambda x: cell_label(x))
            order = sorted_values(list(values.dropna().unique()))
            labels = [cell_label(x) for x in order] + (["none"] if values.isna().any() else [])
            step = 1.0 / (len(labels) - 1) if len(labels) > 1 else 0.0
            where = {lab: (i * step if len(labels) > 1 else 0.5) for i, lab in enumerate(labels)}
            pos = text.map(where)
            raw = text
        frames.append(pd.DataFrame({
            "run": ok["run"].to_numpy(), "trial_id": ok["trial_id"].to_numpy(),
            "objective": ok[objective].astype(float).to_numpy(), "axis": param_name(column),
            "kind": "numeric" if numeric else "categorical", "raw": raw.to_numpy(),
            "position": pos.astype(float).to_numpy(),
        }))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
