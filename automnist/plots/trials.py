"""Figures comparing trials: leaderboard, hyperparameter effects, grid pivot, parallel
coordinates, learning curves, cost trade-offs, runs side by side.

DataFrame in, :class:`matplotlib.figure.Figure` out, no file I/O.  The numbers come from
:mod:`automnist.aggregate` (optuna style: ``aggregate`` gathers, this module draws), so
they are tested without pictures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from automnist.aggregate import (
    effect_points,
    effects,
    leaderboard,
    learning_curve_data,
    parallel_data,
    param_name,
    pivot,
)
from automnist.plots._style import boxplot, empty, new_figure, palette, styled
from automnist.spec import value_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_effect",
    "plot_leaderboard",
    "plot_learning_curves",
    "plot_parallel",
    "plot_pivot",
    "plot_run_comparison",
    "plot_tradeoffs",
]


def _trial_labels(frame: pd.DataFrame) -> list[str]:
    multi = frame["run"].nunique() > 1
    return [f"#{r} {run}/{t}" if multi else f"#{r} {t}"
            for r, run, t in zip(frame["rank"], frame["run"], frame["trial_id"])]


# --------------------------------------------------------------------------- trial comparison


@styled
def plot_leaderboard(
    trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max", top: int = 20
) -> Figure:
    """The ``top`` best trials' objective with ±1 std error bars (std over CV folds).

    Numbers from :func:`automnist.aggregate.leaderboard`; one error-bar series per run,
    best trial on top.
    """
    board = leaderboard(trials, objective, direction)
    board = board[board[objective].notna()].head(top)
    fig, ax = new_figure(6.4, max(2.0, 0.28 * len(board) + 1.2))
    if board.empty:
        empty(ax, "no ok trials")
        return fig
    y = np.arange(len(board))[::-1]
    runs = list(pd.unique(board["run"]))
    colors = palette(len(runs))
    std = board[f"{objective}_std"].astype(float)
    for run, color in zip(runs, colors):
        mask = (board["run"] == run).to_numpy()
        err = std[mask].to_numpy()
        ax.errorbar(board.loc[mask, objective].astype(float), y[mask],
                    xerr=np.where(np.isnan(err), 0.0, err), fmt="o", color=color, capsize=3,
                    label=str(run))
    ax.set_yticks(y, _trial_labels(board))
    ax.set_xlabel(objective + (" (mean ± std over folds)" if std.notna().any() else ""))
    ax.set_title(f"Top {len(board)} trials by {objective} ({'higher' if direction == 'max' else 'lower'} is better)")
    if len(runs) > 1:
        ax.legend(loc="best")
    return fig


@styled
def plot_effect(
    trials: pd.DataFrame, param: str, objective: str = "val_accuracy", direction: str = "max"
) -> Figure:
    """Box + strip plot of the objective at each value of one hyperparameter.

    Levels (and quantile bins for continuous ranges) from
    :func:`automnist.aggregate.effect_points`; with one run, each level's mean from
    :func:`automnist.aggregate.effects` is marked with a diamond.  With several runs
    the boxes are split by run.
    """
    import seaborn as sns

    name = param_name(param)
    points = effect_points(trials, name, objective)
    levels = list(points["level"].cat.categories)
    fig, ax = new_figure(max(3.2, 0.55 * len(levels) + 1.8), 3.2)
    if points.empty:
        empty(ax, f"no ok trials for {name}")
        return fig
    multi = points["run"].nunique() > 1
    box = {"hue": "run", "dodge": True, "palette": "pastel"} if multi else {"color": "0.85"}
    boxplot(data=points, x="level", y=objective, order=levels, ax=ax, showfliers=False, **box)
    sns.stripplot(data=points, x="level", y=objective, order=levels, ax=ax, size=3.5, alpha=0.7,
                  legend=False, **({"hue": "run", "dodge": True} if multi else {"color": "C0"}))
    if not multi:
        table = effects(trials, objective, direction)
        means = table.loc[table["param"] == name, "mean"].to_numpy(float)
        if len(means) == len(levels):
            ax.plot(np.arange(len(levels)), means, "D", color="C3", markersize=6, label="mean", zorder=5)
            ax.legend(loc="best")
    ax.set_xlabel(name)
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} by {name}")
    if max((len(lv) for lv in levels), default=0) > 8:
        ax.tick_params(axis="x", labelrotation=30)
    return fig


@styled
def plot_pivot(
    trials: pd.DataFrame,
    row_param: str,
    col_param: str,
    objective: str = "val_accuracy",
    aggfunc: str = "mean",
) -> Figure:
    """Heatmap of :func:`automnist.aggregate.pivot` (a 2-D grid), cells annotated."""
    import seaborn as sns

    table = pivot(trials, row_param, col_param, objective, aggfunc)
    fig, ax = new_figure(max(3.5, 0.8 * table.shape[1] + 2.2), max(2.5, 0.45 * table.shape[0] + 1.4))
    if table.empty:
        empty(ax, "no ok trials")
        return fig
    table.index = [value_label(v) for v in table.index]
    table.columns = [value_label(v) for v in table.columns]
    sns.heatmap(table, annot=table.size <= 400, fmt=".4g", cmap="viridis", ax=ax,
                cbar_kws={"label": f"{aggfunc} {objective}"})
    ax.set_ylabel(param_name(row_param))
    ax.set_xlabel(param_name(col_param))
    ax.set_title(f"{aggfunc} {objective}")
    return fig


@styled
def plot_parallel(
    trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max", max_lines: int = 300
) -> Figure:
    """Parallel coordinates of the ok trials, coloured by the objective.

    Positions from :func:`automnist.aggregate.parallel_data` (numeric axes min-max
    normalised, categorical values spread evenly; downsampled to ``max_lines``).  One
    :class:`~matplotlib.collections.LineCollection` holds every trial's line.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    data = parallel_data(trials, objective, direction, max_lines=max_lines)
    axes = list(pd.unique(data["axis"]))
    fig, ax = new_figure(max(5.0, 1.3 * len(axes) + 1.5), 4.0)
    if data.empty:
        empty(ax, "no ok trials")
        return fig
    wide = data.pivot_table(index=["run", "trial_id"], columns="axis", values="position", sort=False)[axes]
    value = data.drop_duplicates(["run", "trial_id"]).set_index(["run", "trial_id"])["objective"]
    value = value.reindex(wide.index)
    order = np.argsort(value.to_numpy() if direction == "max" else -value.to_numpy())  # best drawn last
    x = np.arange(len(axes), dtype=float)
    segments = [np.column_stack([x, row]) for row in wide.to_numpy()[order]]
    norm = Normalize(value.min(), value.max())
    cmap = "viridis" if direction == "max" else "viridis_r"
    lines = LineCollection(segments, array=value.to_numpy()[order], cmap=cmap, norm=norm,
                           linewidths=1.0, alpha=0.6)
    ax.add_collection(lines)
    for i, name in enumerate(axes):
        ax.axvline(i, color="0.3", linewidth=0.8)
        ticks = data[data["axis"] == name].drop_duplicates("raw")
        if ticks["kind"].iloc[0] == "categorical":
            shown = ticks[["raw", "position"]].drop_duplicates("position")
        else:
            shown = ticks.loc[[ticks["position"].idxmin(), ticks["position"].idxmax()], ["raw", "position"]]
            shown = shown.drop_duplicates("position")
        for raw, pos in zip(shown["raw"], shown["position"]):
            ax.text(i + 0.03, pos, str(raw), fontsize=7, va="center", ha="left",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_xlim(-0.1, len(axes) - 0.6 if len(axes) > 1 else 0.9)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(x, axes)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_title(f"Parallel coordinates of {len(wide)} ok trials")
    fig.colorbar(lines, ax=ax, label=objective)
    return fig


@styled
def plot_learning_curves(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    k: int = 5,
    objective: str = "val_accuracy",
    direction: str = "max",
) -> Figure:
    """Train (solid) and validation (dashed) loss and accuracy per epoch of the ``k`` best trials.

    Curves from :func:`automnist.aggregate.learning_curve_data` (fold means with CV).
    Two axes: loss, accuracy.  Each line's label is ``"<trial label> <split>"``.
    """
    from matplotlib.ticker import MaxNLocator

    data = learning_curve_data(history, trials, k, objective, direction)
    fig, axes = new_figure(9.0, 3.4, nrows=1, ncols=2)
    if data.empty:
        for ax in axes:
            empty(ax, "no per-epoch history recorded")
        return fig
    labels = list(pd.unique(data["label"]))
    colors = dict(zip(labels, palette(len(labels))))
    for ax, quantity in zip(axes, ("loss", "accuracy")):
        part = data[data["quantity"] == quantity]
        if part.empty:
            empty(ax, f"no {quantity} history")
            continue
        for (label, split), curve in part.groupby(["label", "split"], sort=False):
            ax.plot(curve["epoch"], curve["value"], linestyle="-" if split == "train" else "--",
                    color=colors[label], marker="o", markersize=2.5, label=f"{label} {split}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(quantity)
        ax.set_title(f"{quantity} (solid: train, dashed: validation)")
    axes[1].legend(loc="best", ncols=1 if len(labels) <= 3 else 2)
    return fig


@styled
def plot_tradeoffs(trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max") -> Figure:
    """Objective against training time (left) and parameter count (right); best trial starred.

    Points from :func:`automnist.aggregate.leaderboard`; one scatter series per run.
    """
    board = leaderboard(trials, objective, direction)
    board = board[board[objective].notna()]
    fig, axes = new_figure(9.0, 3.4, nrows=1, ncols=2)
    runs = list(pd.unique(board["run"]))
    colors = palette(max(1, len(runs)))
    for ax, column, label in zip(axes, ("duration_s", "n_params"), ("training time (s)", "trainable parameters")):
        part = board[pd.to_numeric(board[column], errors="coerce").notna()]
        if part.empty:
            empty(ax, f"no {label} recorded")
            continue
        for run, color in zip(runs, colors):
            mine = part[part["run"] == run]
            ax.scatter(mine[column].astype(float), mine[objective], s=14, alpha=0.7, color=color,
                       label=str(run) if len(runs) > 1 else "ok trials")
        best = part.iloc[0]
        ax.scatter([float(best[column])], [best[objective]], marker="*", s=160, color="C3",
                   edgecolor="black", zorder=5, label="best")
        values = part[column].astype(float)
        if values.min() > 0 and values.max() / values.min() > 100:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(objective)
        ax.set_title(f"{objective} vs {label}")
    if not board.empty:
        axes[0].legend(loc="best")
    return fig


@styled
def plot_run_comparison(trials: pd.DataFrame, objective: str = "val_accuracy") -> Figure:
    """Box + strip plot of the ok trials' objective, one box per run."""
    import seaborn as sns

    ok = trials[(trials["status"] == "ok") & pd.to_numeric(trials[objective], errors="coerce").notna()]
    runs = [str(r) for r in pd.unique(trials["run"])]
    fig, ax = new_figure(max(4.0, 1.2 * len(runs) + 2.0), 3.4)
    if ok.empty:
        empty(ax, "no ok trials")
        return fig
    data = pd.DataFrame({"run": ok["run"].astype(str), objective: ok[objective].astype(float)})
    boxplot(data=data, x="run", y=objective, order=runs, ax=ax, color="0.85", showfliers=False)
    sns.stripplot(data=data, x="run", y=objective, order=runs, ax=ax, size=3.5, alpha=0.7, color="C0")
    ax.set_title(f"{objective} of the ok trials per run")
    return fig
