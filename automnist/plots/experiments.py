"""Figures of the runs that are not searches: learning-rate range tests, one-factor-at-a-time
sweeps (seed 004, figures 3.7 to 3.20) and clean / noisy / denoised comparisons.

DataFrames in, a matplotlib ``Figure`` out, no file I/O.  The numbers come from
:mod:`automnist.aggregate` (``lr_find_curves``, ``sweep_curves``, ``sweep_values``,
``denoising_table``), so they are tested without pictures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from automnist.aggregate import sweep_curves
from automnist.plots._style import empty, new_figure, styled

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from automnist.spec import SearchSpec

__all__ = ["plot_denoising", "plot_lr_find", "plot_sweep_curves", "plot_sweep_values"]

_METRIC_LABELS = {"val_accuracy": "validation accuracy", "val_loss": "validation loss",
                  "accuracy": "training accuracy", "loss": "training loss"}


def plot_lr_find(curves: pd.DataFrame, *, show_raw: bool = True) -> Figure:
    """Loss against learning rate (log x), one line per optimizer, the suggestion marked.

    Parameters
    ----------
    curves : DataFrame
        :func:`automnist.aggregate.lr_find_curves` (with ``suggested_lr`` for the markers).
    show_raw : bool
        Also draw the raw per-batch loss, faintly.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_figure(7.5, 4.5)
    if curves.empty:
        empty(ax, "no range-test curves")
        return fig
    several_runs = curves["run"].nunique() > 1
    low, high = math.inf, -math.inf
    for (run, opt), c in curves.groupby(["run", "optimizer"], sort=False):
        label = f"{run}: {opt}" if several_runs else str(opt)
        sm = c["smoothed_loss"].to_numpy(dtype=float)
        line = ax.plot(c["lr"], sm, label=label)[0]
        if show_raw:
            ax.plot(c["lr"], c["loss"], color=line.get_color(), alpha=0.2, linewidth=0.8)
        finite = sm[np.isfinite(sm)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite[0]))
        lr = c["suggested_lr"].iloc[0] if "suggested_lr" in c else math.nan
        if lr is not None and np.isfinite(lr):
            y = float(np.interp(np.log10(lr), np.log10(c["lr"].to_numpy(float)), sm))
            ax.plot([lr], [y], marker="o", markersize=7, color=line.get_color())
            ax.annotate(f"{lr:.2g}", (lr, y), textcoords="offset points", xytext=(4, 6), fontsize=8,
                        color=line.get_color())
    ax.set_xscale("log")
    if math.isfinite(low) and math.isfinite(high) and high > low:
        pad = (high - low) * 0.1
        ax.set_ylim(low - pad, high + 3 * pad)  # the divergence would squash the useful part
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("Learning-rate range test (dot: suggested learning rate)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


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
    from matplotlib.ticker import MaxNLocator

    curves = sweep_curves(history, trials, spec, metrics=metrics)
    order = list(dict.fromkeys(curves["param"])) if not curves.empty else []
    if params is not None:
        order = [p for p in order if p in params]
    n_rows = max(len(order), 1)
    fig, axes = new_figure(4.2 * len(metrics), 2.8 * n_rows, nrows=n_rows, ncols=len(metrics), squeeze=False)
    if not order:
        for ax in axes.ravel():
            ax.set_axis_off()
        empty(axes[0][0], "no per-epoch history in this sweep")
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
        :func:`automnist.aggregate.sweep_values` of a sweep run.
    objective : str
        Axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    trained = values[values["n"] > 0]
    order = list(dict.fromkeys(trained["param"]))
    n = max(len(order), 1)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, grid = new_figure(3.4 * cols, 2.8 * rows, nrows=rows, ncols=cols, squeeze=False)
    axes = grid.ravel()
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


@styled
def plot_denoising(table: pd.DataFrame, metric: str = "test_accuracy") -> Figure:
    """Bars of one classifier's ``metric`` on clean, noisy and denoised images.

    Numbers from :func:`automnist.aggregate.denoising_table`; each bar is labelled with its
    value, conditions that did not train are marked "failed".
    """
    fig, ax = new_figure(4.8, 3.0)
    if table.empty:
        empty(ax, "no conditions")
        return fig
    values = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
    x = np.arange(len(table))
    colors = {"clean": "C2", "noisy": "C3", "denoised": "C0"}
    ax.bar(x, np.nan_to_num(values), color=[colors.get(str(c), "C7") for c in table["condition"]])
    for xi, v in zip(x, values):
        ax.annotate("failed" if math.isnan(v) else f"{v:.2%}" if metric.endswith("accuracy") else f"{v:.4g}",
                    (xi, 0 if math.isnan(v) else v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(x, [str(c) for c in table["condition"]])
    finite = values[np.isfinite(values)]
    if finite.size and metric.endswith("accuracy"):
        ax.set_ylim(max(0.0, float(finite.min()) - 0.1), min(1.0, float(finite.max()) + 0.05))
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} on clean, noisy and denoised images")
    return fig
