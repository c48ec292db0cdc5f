"""Figures of one-factor-at-a-time sweeps (seed 004, figures 3.7 to 3.20).

DataFrames in, a matplotlib ``Figure`` out, no file I/O.  The numbers come from
:func:`automnist.strategies.sweep.sweep_curves` / :func:`~automnist.strategies.sweep.sweep_values`,
so they are tested without pictures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from automnist.spec import SearchSpec

__all__ = ["plot_sweep_curves", "plot_sweep_values"]

_METRIC_LABELS = {"val_accuracy": "validation accuracy", "val_loss": "validation loss",
                  "accuracy": "training accuracy", "loss": "training loss"}


def plot_sweep_curves(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    spec: SearchSpec | Mapping[str, Any],
    *,
    metrics: tuple[str, ...] = ("val_accuracy", "val_loss"),
    params: list[str] | None = None,
) -> Figure:
    """Learning curves of every swept value: one row of panels per hyperparameter.

    Each row has one panel per metric (validation accuracy and loss by default), one line
    per value (mean over repeats and folds, a band of one standard deviation when there
    are several runs); the baseline value is drawn dashed and marked "(baseline)".  A row
    title says when earlier winners had been carried into the baseline (``chain: true``).

    Parameters
    ----------
    history, trials : DataFrame
        ``Store.history_frame(run)`` and ``Store.trials_frame(run)`` of one sweep run.
    spec : SearchSpec or mapping
        The run's spec, or its stored ``config`` (``Store.get_run(run)["config"]``).
    metrics : tuple of str
        Metrics, one panel column each.
    params : list of str, optional
        Only these hyperparameters (default: every swept one).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from automnist.strategies.sweep import sweep_curves

    curves = sweep_curves(history, trials, spec, metrics=metrics)
    order = list(dict.fromkeys(curves["param"])) if not curves.empty else []
    if params is not None:
        order = [p for p in order if p in params]
    n_rows = max(len(order), 1)
    fig = Figure(figsize=(4.2 * len(metrics), 2.8 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, len(metrics), squeeze=False)
    if not order:
        axes[0][0].text(0.5, 0.5, "no per-epoch history in this sweep", ha="center", va="center")
        for ax in axes.ravel():
            ax.set_axis_off()
        return fig
    for r, param in enumerate(order):
        sub = curves[curves["param"] == param]
        chained = bool(sub["baseline_changed"].iloc[0])
        for c, metric in enumerate(metrics):
            ax = axes[r][c]
            part = sub[sub["metric"] == metric]
            for value, line in part.groupby("value", sort=False):
                line = line.sort_values("epoch")
                baseline = bool(line["is_baseline"].iloc[0])
                label = f"{value} (baseline)" if baseline else str(value)
                drawn = ax.plot(line["epoch"], line["mean"], marker="o", markersize=3,
                                linestyle="--" if baseline else "-", label=label)
                spread = line["std"].fillna(0.0)
                if (line["n"] > 1).any():
                    ax.fill_between(line["epoch"], line["mean"] - spread, line["mean"] + spread,
                                    color=drawn[0].get_color(), alpha=0.15, linewidth=0)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
            ax.grid(True, alpha=0.3)
            title = param + (" (after earlier winners)" if chained else "")
            ax.set_title(title, fontsize=10)
            if c == 0 and not part.empty:
                ax.legend(fontsize=7, title=param, title_fontsize=7)
            if part.empty:
                ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_sweep_values(values: pd.DataFrame, *, objective: str = "val_accuracy") -> Figure:
    """Final objective per value with error bars (min-max over runs): one panel per hyperparameter.

    A value without an ok run (failed, infeasible, or cut by the budget) keeps its place
    on the axis, marked "failed" or "not trained" instead of a bar.

    Parameters
    ----------
    values : DataFrame
        :func:`automnist.strategies.sweep.sweep_values` of a sweep run.
    objective : str
        Axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np
    from matplotlib.figure import Figure

    trained = values[values["n"] > 0]
    order = list(dict.fromkeys(trained["param"]))
    n = max(len(order), 1)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.4 * cols, 2.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[len(order):]:
        ax.set_axis_off()
    if not order:
        axes[0].set_axis_on()
        axes[0].text(0.5, 0.5, "no trained values", ha="center", va="center")
        return fig
    for ax, param in zip(axes, order):
        sub = values[(values["param"] == param) & values["value"].notna()]  # untrained values keep their place
        ok = (sub["n"] > 0).to_numpy()
        x = np.arange(len(sub))
        mean = sub["mean"].to_numpy(dtype=float)
        low = np.nan_to_num(mean - sub["min"].to_numpy(dtype=float))
        high = np.nan_to_num(sub["max"].to_numpy(dtype=float) - mean)
        colors = ["tab:orange" if b else "tab:blue" for b in sub["is_baseline"]]
        ax.bar(x[ok], mean[ok], color=[c for c, k in zip(colors, ok) if k],
               yerr=np.vstack([low[ok], high[ok]]), capsize=3)
        lo, hi = float(np.nanmin(sub["min"])), float(np.nanmax(sub["max"]))
        pad = max((hi - lo) * 0.2, 1e-3)
        ax.set_ylim(lo - pad, hi + pad)
        for xi in x[~ok]:  # say why there is no bar
            reason = "failed" if int(sub["n_failed"].iloc[xi]) else "not trained"
            ax.text(xi, lo - pad / 2, reason, ha="center", va="bottom", rotation=90, fontsize=7, color="tab:red")
        labels = [str(v) for v in sub["value"]]
        tilt = len(sub) > 4 or max(map(len, labels)) > 6  # long labels (loss names) would overlap
        ax.set_xticks(x, labels, rotation=35 if tilt else 0, ha="right" if tilt else "center", fontsize=8)
        ax.set_xlim(-0.6, len(sub) - 0.4)
        ax.set_title(param, fontsize=10)
        ax.set_ylabel(objective)
    return fig
