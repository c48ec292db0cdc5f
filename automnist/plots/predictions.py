"""Figures of the best model on the test set: confusion matrix, ROC and precision-recall
curves, misclassified and sample images.

Arrays in, :class:`matplotlib.figure.Figure` out, no file I/O; the curves' numbers come
from :mod:`automnist.aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from automnist.aggregate import confusion_frame, pr_curve_data, roc_curve_data
from automnist.plots._style import empty, new_figure, palette, styled

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_confusion",
    "plot_image_grid",
    "plot_misclassified",
    "plot_pr",
    "plot_roc",
    "plot_samples",
]


@styled
def plot_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None = None
) -> Figure:
    """Confusion-matrix heatmap (:func:`automnist.aggregate.confusion_frame`), counts annotated."""
    import seaborn as sns

    cm = confusion_frame(y_true, y_pred, class_names)
    k = len(cm)
    fig, ax = new_figure(max(3.5, 0.45 * k + 2.0), max(3.0, 0.45 * k + 1.4))
    sns.heatmap(cm, annot=k <= 30, fmt="d", cmap="Blues", ax=ax, cbar=True, square=k <= 30)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (n = {int(cm.to_numpy().sum())})")
    return fig


def _per_class_curves(data: pd.DataFrame, x: str, y: str, score: str, labels: tuple[str, str, str],
                      loc: str) -> Figure:
    """One line per class of ``data`` (``x`` against ``y``), ``"<score> = <value>"`` in the legend.

    ``labels`` are the x label, the y label and the title.
    """
    fig, ax = new_figure(5.2, 4.2)
    classes = list(pd.unique(data["class"]))
    for cls, color in zip(classes, palette(len(classes))):
        curve = data[data["class"] == cls]
        ax.plot(curve[x], curve[y], color=color, linewidth=1.2,
                label=f"{cls} ({score.upper()} = {curve[score].iloc[0]:.4f})")
    xlabel, ylabel, title = labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if classes:
        ax.legend(loc=loc, ncols=1 if len(classes) <= 12 else 2)
    return fig


@styled
def plot_roc(y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None) -> Figure:
    """One-vs-rest ROC curve per class, AUC in the legend (:func:`automnist.aggregate.roc_curve_data`)."""
    labels = ("false positive rate", "true positive rate", "ROC curves (one vs rest)")
    fig = _per_class_curves(roc_curve_data(y_true, y_prob, class_names), "fpr", "tpr", "auc", labels, "lower right")
    fig.axes[0].plot([0, 1], [0, 1], linestyle=":", color="0.5", label="_chance")
    return fig


@styled
def plot_pr(y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None) -> Figure:
    """One-vs-rest precision-recall curve per class, average precision in the legend."""
    labels = ("recall", "precision", "Precision-recall curves (one vs rest)")
    return _per_class_curves(pr_curve_data(y_true, y_prob, class_names), "recall", "precision", "ap", labels,
                             "lower left")


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


@styled
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
    fig, ax = new_figure(1.25 * ncols + 0.3, 1.45 * nrows + (0.4 if title else 0.1))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if n == 0:
        empty(ax, "no images")
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
