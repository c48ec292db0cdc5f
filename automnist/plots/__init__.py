"""Figures: DataFrame (or arrays) in, :class:`matplotlib.figure.Figure` out, no file I/O.

* :mod:`automnist.plots.trials` -- comparing trials (leaderboard, effects, curves, ...);
* :mod:`automnist.plots.predictions` -- the best model on the test set;
* :mod:`automnist.plots.experiments` -- range tests, sweeps and denoising comparisons.

The numbers come from :mod:`automnist.aggregate`; matplotlib and seaborn are imported
inside the drawing functions, so importing this package stays fast.
"""

from automnist.plots.experiments import plot_denoising, plot_lr_find, plot_sweep_curves, plot_sweep_values
from automnist.plots.predictions import (
    plot_confusion,
    plot_image_grid,
    plot_misclassified,
    plot_pr,
    plot_roc,
    plot_samples,
)
from automnist.plots.trials import (
    plot_effect,
    plot_leaderboard,
    plot_learning_curves,
    plot_parallel,
    plot_pivot,
    plot_run_comparison,
    plot_tradeoffs,
)

__all__ = [
    "plot_confusion",
    "plot_denoising",
    "plot_effect",
    "plot_image_grid",
    "plot_leaderboard",
    "plot_learning_curves",
    "plot_lr_find",
    "plot_misclassified",
    "plot_parallel",
    "plot_pivot",
    "plot_pr",
    "plot_roc",
    "plot_run_comparison",
    "plot_samples",
    "plot_sweep_curves",
    "plot_sweep_values",
    "plot_tradeoffs",
]
