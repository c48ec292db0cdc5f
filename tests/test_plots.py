"""plots: figure contents (axes, lines, labels, texts) drawn from the aggregate numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

from automnist import aggregate as ag
from automnist import plots
from test_aggregate import trials_frame


def _history() -> pd.DataFrame:
    rows = []
    for trial in ("t2", "t0", "t4", "t3"):
        for epoch in (1, 2, 3):
            for metric in ("loss", "val_loss", "accuracy", "val_accuracy"):
                rows.append({"run": "a", "trial_id": trial, "fold": 0, "epoch": epoch, "metric": metric,
                             "value": epoch / 10})
    return pd.DataFrame(rows)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_plots_return_pyplot_free_figures() -> None:
    fig = plots.plot_leaderboard(trials_frame())
    assert isinstance(fig, Figure)
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # nothing registered in pyplot, nothing to close


def test_leaderboard_plot_uses_leaderboard_numbers() -> None:
    frame = trials_frame()
    fig = plots.plot_leaderboard(frame, top=4)
    (ax,) = fig.axes
    board = ag.leaderboard(frame).head(4)
    line = ax.lines[0]  # the error-bar series' data line
    assert line.get_xdata().tolist() == board["val_accuracy"].tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["#1 t2", "#2 t0", "#2 t4", "#4 t3"]
    assert ax.get_title() == "Top 4 trials by val_accuracy (higher is better)"
    assert ax.get_xlabel() == "val_accuracy (mean ± std over folds)"


def test_leaderboard_plot_without_ok_trials_says_so() -> None:
    frame = trials_frame()
    frame["status"] = "failed"
    (ax,) = plots.plot_leaderboard(frame).axes
    assert _texts(ax) == ["no ok trials"]


def test_effect_plot_boxes_points_and_means() -> None:
    frame = trials_frame()
    fig = plots.plot_effect(frame, "k")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["3", "5", "7"]
    means = ag.effects(frame).query("param == 'k'")["mean"].to_numpy()
    mean_line = next(line for line in ax.lines if line.get_label() == "mean")
    np.testing.assert_allclose(mean_line.get_ydata(), means)
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == 6  # one dot per ok trial
    assert ax.get_title() == "val_accuracy by k"


def test_effect_plot_splits_boxes_by_run() -> None:
    both = pd.concat([trials_frame("a"), trials_frame("b")], ignore_index=True)
    (ax,) = plots.plot_effect(both, "opt").axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "sgd"]
    assert not any(line.get_label() == "mean" for line in ax.lines)
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == 12


def test_pivot_heatmap_annotations_are_the_pivot() -> None:
    frame = trials_frame()
    fig = plots.plot_pivot(frame, "k", "opt")
    heat = fig.axes[0]
    assert sorted(_texts(heat)) == sorted(f"{v:.4g}" for v in ag.pivot(frame, "k", "opt").to_numpy().ravel())
    assert heat.get_ylabel() == "k" and heat.get_xlabel() == "opt"
    assert len(fig.axes) == 2  # heatmap + colour bar


def test_parallel_coordinates_one_line_per_trial() -> None:
    frame = trials_frame()
    fig = plots.plot_parallel(frame)
    ax = fig.axes[0]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = lines.get_segments()
    assert len(segments) == 6
    data = ag.parallel_data(frame)
    best = data[data["trial_id"] == "t2"]["position"].tolist()
    assert segments[-1][:, 1].tolist() == best  # best trial drawn last (on top)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["k", "opt", "val_accuracy"]
    assert {"adam", "sgd", "3", "7"} <= set(_texts(ax))
    assert fig.axes[1].get_ylabel() == "val_accuracy"  # colour bar


def test_learning_curves_top_k_train_and_validation() -> None:
    fig = plots.plot_learning_curves(_history(), trials_frame(), k=2)
    loss_ax, acc_ax = fig.axes
    labels = [line.get_label() for line in loss_ax.lines]
    assert labels == ["#1 t2 train", "#1 t2 validation", "#2 t0 train", "#2 t0 validation"]
    assert [line.get_linestyle() for line in acc_ax.lines] == ["-", "--", "-", "--"]
    assert loss_ax.lines[0].get_ydata().tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert loss_ax.get_ylabel() == "loss" and acc_ax.get_ylabel() == "accuracy"


def test_learning_curves_without_history() -> None:
    empty = pd.DataFrame(columns=["run", "trial_id", "fold", "epoch", "metric", "value"])
    fig = plots.plot_learning_curves(empty, trials_frame())
    assert [_texts(ax) for ax in fig.axes] == [["no per-epoch history recorded"]] * 2


def test_tradeoffs_scatter_time_and_size() -> None:
    frame = trials_frame()
    time_ax, size_ax = plots.plot_tradeoffs(frame).axes
    board = ag.leaderboard(frame)
    dots = time_ax.collections[0].get_offsets()
    assert dots[:, 0].tolist() == board["duration_s"].tolist()
    assert dots[:, 1].tolist() == board["val_accuracy"].tolist()
    star = size_ax.collections[-1].get_offsets()
    assert star.tolist() == [[300.0, 0.95]]  # best trial t2
    assert time_ax.get_xlabel() == "training time (s)" and size_ax.get_xlabel() == "trainable parameters"


def test_run_comparison_one_box_per_run() -> None:
    both = pd.concat([trials_frame("a"), trials_frame("b")], ignore_index=True)
    (ax,) = plots.plot_run_comparison(both).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


# --------------------------------------------------------------------------- test-set figures

Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PROB = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1],
                   [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4]])
NAMES = ["zero", "one", "two"]


def test_confusion_heatmap_counts() -> None:
    fig = plots.plot_confusion(Y_TRUE, Y_PROB.argmax(axis=1), NAMES)
    ax = fig.axes[0]
    expected = ag.confusion_frame(Y_TRUE, Y_PROB.argmax(axis=1), NAMES).to_numpy().ravel()
    assert _texts(ax) == [str(v) for v in expected]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert ax.get_title() == "Confusion matrix (n = 6)"


def test_roc_curves_one_per_class_with_auc_in_legend() -> None:
    (ax,) = plots.plot_roc(Y_TRUE, Y_PROB, NAMES).axes
    assert len(ax.lines) == 4  # three classes + the chance diagonal
    aucs = ag.roc_curve_data(Y_TRUE, Y_PROB, NAMES).groupby("class", sort=False)["auc"].first()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{name} (AUC = {aucs[name]:.4f})" for name in NAMES]
    assert legend[0] == "zero (AUC = 0.8750)"  # 7 of 8 positive/negative pairs ordered


def test_pr_curves_with_average_precision() -> None:
    (ax,) = plots.plot_pr(Y_TRUE, Y_PROB, NAMES).axes
    assert len(ax.lines) == 3
    aps = ag.pr_curve_data(Y_TRUE, Y_PROB, NAMES).groupby("class", sort=False)["ap"].first()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{n} (AP = {aps[n]:.4f})" for n in NAMES]


def test_misclassified_grid_titles_and_mosaic() -> None:
    images = np.random.default_rng(0).random((10, 8, 8, 1)).astype(np.float32)
    fig = plots.plot_misclassified(images, np.arange(10) % 3, (np.arange(10) + 1) % 3, NAMES, ncols=4)
    (ax,) = fig.axes
    texts = _texts(ax)
    assert len(texts) == 10
    assert texts[0] == "true zero / pred one" and texts[2] == "true two / pred zero"
    (image,) = ax.images
    assert image.get_array().shape[:2] == (3 * (8 + 1 + 2), 4 * (8 + 1))  # 3 rows x 4 columns of tiles
    assert ax.get_title() == "10 misclassified test images"


def test_sample_grid_rgb_and_labels() -> None:
    images = np.random.default_rng(0).random((3, 5, 5, 3))
    (ax,) = plots.plot_samples(images, np.array([2, 0, 1]), NAMES).axes
    assert _texts(ax) == ["two", "zero", "one"]
    assert ax.images[0].get_array().shape[-1] == 3
    with pytest.raises(ValueError, match="titles: expected 3 \\(one per image\\), got 2"):
        plots.plot_image_grid(images, ["a", "b"])
