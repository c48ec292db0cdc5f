"""The clean / noisy / denoised comparison table of a ``denoise-compare`` run.

The numbers behind :func:`automnist.plots.plot_denoising`; the comparison itself is
:func:`automnist.experiments.denoise.compare_denoising`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from automnist.errors import AutomnistError

__all__ = ["CONDITIONS", "COMPARE_STRATEGY", "denoising_table"]

#: The rows of a denoising comparison, in order (also its trial ids).
CONDITIONS = ("clean", "noisy", "denoised")
#: ``strategy`` of the runs :func:`automnist.experiments.denoise.compare_denoising` stores.
COMPARE_STRATEGY = "denoise-compare"


def denoising_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Clean / noisy / denoised accuracy from the trials of a ``denoise-compare`` run.

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame(run)`` of a run written by
        :func:`automnist.experiments.denoise.compare_denoising` (or any
        frame with ``trial_id`` in :data:`CONDITIONS` and the metric columns).

    Returns
    -------
    DataFrame
        ``condition, test_accuracy, test_loss, val_accuracy, status, trial_id, run`` in the
        order clean, noisy, denoised (conditions missing from ``trials`` are left out).

    Raises
    ------
    AutomnistError
        When ``trials`` holds none of the conditions.
    """
    rows = trials[trials["trial_id"].isin(CONDITIONS)].copy()
    if rows.empty:
        raise AutomnistError(f"no {', '.join(CONDITIONS)} trials: not a {COMPARE_STRATEGY} run")
    rows["condition"] = pd.Categorical(rows["trial_id"], categories=CONDITIONS, ordered=True)
    rows = rows.sort_values("condition").reset_index(drop=True)
    rows["condition"] = rows["condition"].astype(str)
    cols = ["condition", "test_accuracy", "test_loss", "val_accuracy", "status", "trial_id", "run"]
    for c in cols:
        if c not in rows:
            rows[c] = np.nan
    return rows[cols]
