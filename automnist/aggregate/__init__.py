"""Comparison tables from the store's frames: pure pandas / scipy, no drawing.

Every public function takes DataFrame(s) shaped like ``Store.trials_frame``,
``Store.folds_frame``, ``Store.history_frame`` or ``Store.runs_frame`` (or a model's
predictions) and returns a new DataFrame.  :mod:`automnist.plots` draws these numbers and
:mod:`automnist.report` puts them in the HTML report, so the numbers are tested here
without pictures (optuna's ``_get_*_info`` / ``_get_*_plot`` split).

Rules shared by all functions
-----------------------------
* Only ``status == "ok"`` trials are ranked or compared; ``failed`` and
  ``infeasible`` trials only appear in :func:`failures` and :func:`run_summary`.
* Trials are ranked by :func:`automnist.records.score_key` (objective values equal to 7
  decimals tie), the rule every other place that picks a best trial uses.
* A hyperparameter is a ``param_<name>`` column.  It "varies" when its ok trials
  (with an objective value) take more than one distinct value; constant
  hyperparameters are left out of effect and significance tables.
* A numeric hyperparameter with more than ``max_levels`` distinct values (a
  continuous range searched by random / Bayesian search) is grouped into
  ``bins`` quantile bins (:func:`pandas.qcut`) so its levels hold several trials.
* Standard deviations are sample standard deviations (``ddof=1``), NaN for one value.

Modules: :mod:`~automnist.aggregate.params` (hyperparameter columns, shared helpers),
:mod:`~automnist.aggregate.trials` (leaderboard, effects, pivots, run summaries),
:mod:`~automnist.aggregate.significance`, :mod:`~automnist.aggregate.plot_data`,
:mod:`~automnist.aggregate.predictions`, and one per experiment kind:
:mod:`~automnist.aggregate.sweep` (with the walk in
:mod:`~automnist.aggregate.sweep_plan`), :mod:`~automnist.aggregate.lr_find`,
:mod:`~automnist.aggregate.denoise`.
"""

from __future__ import annotations

from automnist.aggregate.denoise import denoising_table
from automnist.aggregate.lr_find import lr_find_curves
from automnist.aggregate.params import param_columns, param_name, varying_params
from automnist.aggregate.plot_data import learning_curve_data, parallel_data
from automnist.aggregate.predictions import (
    classification_report_frame,
    confusion_frame,
    pr_curve_data,
    roc_curve_data,
)
from automnist.aggregate.significance import compare_best, param_significance, welch_p
from automnist.aggregate.sweep import best_value, sweep_curves, sweep_table, sweep_values
from automnist.aggregate.trials import (
    effect_points,
    effects,
    effects_by_run,
    failures,
    leaderboard,
    pivot,
    run_summary,
)
from automnist.records import DIRECTIONS

__all__ = [
    "DIRECTIONS",
    "best_value",
    "classification_report_frame",
    "compare_best",
    "confusion_frame",
    "denoising_table",
    "effect_points",
    "effects",
    "effects_by_run",
    "failures",
    "leaderboard",
    "learning_curve_data",
    "lr_find_curves",
    "param_columns",
    "param_name",
    "param_significance",
    "parallel_data",
    "pivot",
    "pr_curve_data",
    "roc_curve_data",
    "run_summary",
    "sweep_curves",
    "sweep_table",
    "sweep_values",
    "varying_params",
    "welch_p",
]
