"""Figures for comparing trials and inspecting the best model.

DataFrame (or arrays) in, :class:`matplotlib.figure.Figure` out, no file I/O.  The
numbers come from :mod:`automnist.aggregate` (optuna style: ``aggregate`` gathers,
this module draws), so they are tested without pictures.

Figures are built with :class:`matplotlib.figure.Figure` directly, not through
``pyplot``: nothing is registered in pyplot's global figure list, nothing has to be
closed, and no GUI backend is ever touched (matplotlib is switched to Agg if pyplot
has not been imported yet).  matplotlib and seaborn are imported inside the
functions so ``import automnist`` stays fast.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from automnist import aggregate
from automnist.spec import value_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_confusion",
    "plot_denoising",
    "plot_effect",
    "plot_image_grid",
    "plot_leaderboard",
    "plot_learning_curves",
    "plot_misclassified",
    "plot_parallel",
    "plot_pivot",
    "plot_pr",
    "plot_roc",
    "plot_run_comparison",
    "plot_samples",
    "plot_tradeoffs",
]

#: One look for every figure (applied with ``matplotlib.rc_context``, never globally).
_RC: dict[str, Any] = {
    "figure.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}

F = TypeVar("F", bound=Callable[..., Any])


def _styled(func: F) -> F:
    """Draw inside the shared rc context (Agg backend, common style)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _figure(width: float = 6.4, height: float = 4.0, **subplots: Any) -> tuple[Figure, Any]:
    """A pyplot-free figure and its axes (``Figure.subplots`` arguments)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(**subplots) if subplots else fig.subplots()
    return fig, axes


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _palette(n: int) -> list[tuple[float, float, float]]:
    import seaborn as sns

    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def _boxplot(**kwargs: Any) -> None:
    """``seaborn.boxplot`` without seaborn 0.13's matplotlib >= 3.11 deprecation noise (``vert``)."""
    import warnings

    import seaborn as sns

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="vert: bool was deprecated")
        sns.boxplot(**kwargs)


def _trial_labels(frame: pd.DataFrame) -> list[str]:
    multi = frame["run"].nunique() > 1
    return [f"#{r} {run}/{t}" if multi else f"#{r} {t}"
            for r, run, t in zip(frame["rank"], frame["run"], frame["trial_id"])]


# --------------------------------------------------------------------------- trial comparison


@_styled
def plot_leaderboard(
    trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max", top: int = 20
) -> Figure:
    """The ``top`` best trials' objective with ±1 std error bars (std over CV folds).

    Numbers from :func:`automnist.aggregate.leaderboard`; one error-bar series per run,
    best trial on top.
    """
    board = aggregate.leaderboard(trials, objective, direction)
    board = board[board[objective].notna()].head(top)
    fig, ax = _figure(6.4, max(2.0, 0.28 * len(board) + 1.2))
    if board.empty:
        _empty(ax, "no ok trials")
        return fig
    y = np.arange(len(board))[::-1]
    runs = list(pd.unique(board["run"]))
    colors = _palette(len(runs))
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


@_styled
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

    name = param.removeprefix(aggregate.PARAM_PREFIX)
    points = aggregate.effect_points(trials, name, objective)
    levels = list(points["level"].cat.categories)
    fig, ax = _figure(max(3.2, 0.55 * len(levels) + 1.8), 3.2)
    if points.empty:
        _empty(ax, f"no ok trials for {name}")
        return fig
    multi = points["run"].nunique() > 1
    box = {"hue": "run", "dodge": True, "palette": "pastel"} if multi else {"color": "0.85"}
    _boxplot(data=points, x="level", y=objective, order=levels, ax=ax, showfliers=False, **box)
    sns.stripplot(data=points, x="level", y=objective, order=levels, ax=ax, size=3.5, alpha=0.7,
                  legend=False, **({"hue": "run", "dodge": True} if multi else {"color": "C0"}))
    if not multi:
        table = aggregate.effects(trials, objective, direction)
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


@_styled
def plot_pivot(
    trials: pd.DataFrame,
    row_param: str,
    col_param: str,
    objective: str = "val_accuracy",
    aggfunc: str = "mean",
) -> Figure:
    """Heatmap of :func:`automnist.aggregate.pivot` (a 2-D grid), cells annotated."""
    import seaborn as sns

    table = aggregate.pivot(trials, row_param, col_param, objective, aggfunc)
    fig, ax = _figure(max(3.5, 0.8 * table.shape[1] + 2.2), max(2.5, 0.45 * table.shape[0] + 1.4))
    if table.empty:
        _empty(ax, "no ok trials")
        return fig
    table.index = [value_label(v) for v in table.index]
    table.columns = [value_label(v) for v in table.columns]
    sns.heatmap(table, annot=table.size <= 400, fmt=".4g", cmap="viridis", ax=ax,
                cbar_kws={"label": f"{aggfunc} {objective}"})
    ax.set_ylabel(row_param.removeprefix(aggregate.PARAM_PREFIX))
    ax.set_xlabel(col_param.removeprefix(aggregate.PARAM_PREFIX))
    ax.set_title(f"{aggfunc} {objective}")
    return fig


@_styled
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

    data = aggregate.parallel_data(trials, objective, direction, max_lines=max_lines)
    axes = list(pd.unique(data["axis"]))
    fig, ax = _figure(max(5.0, 1.3 * len(axes) + 1.5), 4.0)
    if data.empty:
        _empty(ax, "no ok trials")
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


@_styled
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

    data = aggregate.learning_curve_data(history, trials, k, objective, direction)
    fig, axes = _figure(9.0, 3.4, nrows=1, ncols=2)
    if data.empty:
        for ax in axes:
            _empty(ax, "no per-epoch history recorded")
        return fig
    labels = list(pd.unique(data["label"]))
    colors = dict(zip(labels, _palette(len(labels))))
    for ax, quantity in zip(axes, ("loss", "accuracy")):
        part = data[data["quantity"] == quantity]
        if part.empty:
            _empty(ax, f"no {quantity} history")
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


@_styled
def plot_tradeoffs(trials: pd.DataFrame, objective: str = "val_accuracy", direction: str = "max") -> Figure:
    """Objective against training time (left) and parameter count (right); best trial starred.

    Points from :func:`automnist.aggregate.leaderboard`; one scatter series per run.
    """
    board = aggregate.leaderboard(trials, objective, direction)
    board = board[board[objective].notna()]
    fig, axes = _figure(9.0, 3.4, nrows=1, ncols=2)
    runs = list(pd.unique(board["run"]))
    colors = _palette(max(1, len(runs)))
    for ax, column, label in zip(axes, ("duration_s", "n_params"), ("training time (s)", "trainable parameters")):
        part = board[pd.to_numeric(board[column], errors="coerce").notna()]
        if part.empty:
            _empty(ax, f"no {label} recorded")
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


@_styled
def plot_run_comparison(trials: pd.DataFrame, objective: str = "val_accuracy") -> Figure:
    """Box + strip plot of the ok trials' objective, one box per run."""
    import seaborn as sns

    ok = trials[(trials["status"] == "ok") & pd.to_numeric(trials[objective], errors="coerce").notna()]
    runs = [str(r) for r in pd.unique(trials["run"])]
    fig, ax = _figure(max(4.0, 1.2 * len(runs) + 2.0), 3.4)
    if ok.empty:
        _empty(ax, "no ok trials")
        return fig
    data = pd.DataFrame({"run": ok["run"].astype(str), objective: ok[objective].astype(float)})
    _boxplot(data=data, x="run", y=objective, order=runs, ax=ax, color="0.85", showfliers=False)
    sns.stripplot(data=data, x="run", y=objective, order=runs, ax=ax, size=3.5, alpha=0.7, color="C0")
    ax.set_title(f"{objective} of the ok trials per run")
    return fig


@_styled
def plot_denoising(table: pd.DataFrame, metric: str = "test_accuracy") -> Figure:
    """Bars of one classifier's ``metric`` on clean, noisy and denoised images.

    Numbers from :func:`automnist.denoise.denoising_table`; each bar is labelled with its
    value, conditions that did not train are marked "failed".
    """
    fig, ax = _figure(4.8, 3.0)
    if table.empty:
        _empty(ax, "no conditions")
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


# --------------------------------------------------------------------------- best model on the test set


@_styled
def plot_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None = None
) -> Figure:
    """Confusion-matrix heatmap (:func:`automnist.aggregate.confusion_frame`), counts annotated."""
    import seaborn as sns

    cm = aggregate.confusion_frame(y_true, y_pred, class_names)
    k = len(cm)
    fig, ax = _figure(max(3.5, 0.45 * k + 2.0), max(3.0, 0.45 * k + 1.4))
    sns.heatmap(cm, annot=k <= 30, fmt="d", cmap="Blues", ax=ax, cbar=True, square=k <= 30)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (n = {int(cm.to_numpy().sum())})")
    return fig


@_styled
def plot_roc(y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None) -> Figure:
    """One-vs-rest ROC curve per class, AUC in the legend (:func:`automnist.aggregate.roc_curve_data`)."""
    data = aggregate.roc_curve_data(y_true, y_prob, class_names)
    fig, ax = _figure(5.2, 4.2)
    classes = list(pd.unique(data["class"]))
    for cls, color in zip(classes, _palette(len(classes))):
        curve = data[data["class"] == cls]
        ax.plot(curve["fpr"], curve["tpr"], color=color, linewidth=1.2,
                label=f"{cls} (AUC = {curve['auc'].iloc[0]:.4f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="0.5", label="_chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves (one vs rest)")
    if classes:
        ax.legend(loc="lower right", ncols=1 if len(classes) <= 12 else 2)
    return fig


@_styled
def plot_pr(y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None) -> Figure:
    """One-vs-rest precision-recall curve per class, average precision in the legend."""
    data = aggregate.pr_curve_data(y_true, y_prob, class_names)
    fig, ax = _figure(5.2, 4.2)
    classes = list(pd.unique(data["class"]))
    for cls, color in zip(classes, _palette(len(classes))):
        curve = data[data["class"] == cls]
        ax.plot(curve["recall"], curve["precision"], color=color, linewidth=1.2,
                label=f"{cls} (AP = {curve['ap'].iloc[0]:.4f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curves (one vs rest)")
    if classes:
        ax.legend(loc="lower left", ncols=1 if len(classes) <= 12 else 2)
    return fig


def _mosaic(images: np.ndarray, ncols: int, pad: int, top: int) -> tuple[np.ndarray, int, int]:
    """Tile images into one array (white gaps, ``top`` rows of space above each for its title)."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    nrows = math.ceil(n / ncols)
    cell_h, cell_w = h + pad + top, w + pad
    canvas = np.ones((nrows * cell_h, ncols * cell_w, c), dtype=np.float32)
    for i, img in enumerate(images):
        r, col = divmod(i, ncols)
        y0, x0 = r * cell_h + top, col * cell_w
        canvas[y0:y0 + h, x0:x0 + w] = img
    return (canvas[..., 0] if c == 1 else canvas), cell_h, cell_w


@_styled
def plot_image_grid(
    images: np.ndarray, titles: Sequence[str], ncols: int = 8, title: str = "", colors: Sequence[str] | None = None
) -> Figure:
    """A grid of images with a short title above each (one axes, one ``imshow``).

    Parameters
    ----------
    images : array (n, h, w, c) or (n, h, w)
        Values in [0, 1]; one channel is shown in grey, three as RGB.
    titles : sequence of str
        One per image.
    """
    images = np.asarray(images)
    if len(titles) != len(images):
        raise ValueError(f"titles: expected {len(images)} (one per image), got {len(titles)}")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols) if n else 1
    fig, ax = _figure(1.25 * ncols + 0.3, 1.45 * nrows + (0.4 if title else 0.1))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if n == 0:
        _empty(ax, "no images")
        return fig
    h, w = images.shape[1], images.shape[2]
    top = max(2, round(0.3 * h))
    canvas, cell_h, cell_w = _mosaic(images, ncols, pad=max(1, w // 8), top=top)
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    for i, text in enumerate(titles):
        r, col = divmod(i, ncols)
        ax.text(col * cell_w + w / 2, r * cell_h + top - 0.5, str(text), ha="center", va="bottom", fontsize=6.5,
                color=(colors[i] if colors is not None else "black"))
    return fig


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
) -> Figure:
    """Misclassified test images titled ``"true X / pred Y"``."""
    names = _names(class_names, y_true, y_pred)
    titles = [f"true {names[int(t)]} / pred {names[int(p)]}" for t, p in zip(y_true, y_pred)]
    return plot_image_grid(images, titles, ncols=ncols, title=f"{len(titles)} misclassified test images",
                           colors=["#b00020"] * len(titles))


def plot_samples(
    images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None, ncols: int = 8
) -> Figure:
    """Sample training images titled with their labels."""
    names = _names(class_names, labels)
    return plot_image_grid(images, [names[int(y)] for y in labels], ncols=ncols,
                           title=f"{len(labels)} training images")


def _names(class_names: Sequence[str] | None, *labels: np.ndarray) -> list[str]:
    if class_names is not None:
        return [str(c) for c in class_names]
    top = max((int(np.max(y)) for y in labels if len(y)), default=0)
    return [str(i) for i in range(top + 1)]
