"""Hyperparameter columns of a trials frame: names, levels, labels, the ok trials.

The helpers every :mod:`automnist.aggregate` table shares.  A hyperparameter is a
``param_<name>`` column; a missing value (a conditional hyperparameter that was not
active) is labelled ``"none"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from automnist.records import objective_direction, score_key
from automnist.spec import value_label

__all__ = [
    "PARAM_PREFIX",
    "cell_label",
    "check_objective",
    "is_missing",
    "levels",
    "ok_trials",
    "param_column",
    "param_columns",
    "param_name",
    "score_keys",
    "sorted_values",
    "varying_params",
]

PARAM_PREFIX = "param_"


def param_columns(trials: pd.DataFrame) -> list[str]:
    """The ``param_*`` columns of a trials frame, in frame order."""
    return [c for c in trials.columns if str(c).startswith(PARAM_PREFIX)]


def param_name(column: str) -> str:
    """A hyperparameter's name from its column (``param_k`` -> ``k``)."""
    return column[len(PARAM_PREFIX):] if column.startswith(PARAM_PREFIX) else column


def param_column(trials: pd.DataFrame, param: str) -> str:
    """The column of hyperparameter ``param`` (with or without the prefix); ValueError if absent."""
    column = param if param.startswith(PARAM_PREFIX) else PARAM_PREFIX + param
    if column not in trials.columns:
        known = ", ".join(param_name(c) for c in param_columns(trials)) or "none"
        raise ValueError(f"param: no hyperparameter named {param!r} in the trials frame; known: {known}")
    return column


def check_objective(trials: pd.DataFrame, objective: str, direction: str) -> None:
    """ValueError unless ``direction`` is ``"max"`` or ``"min"``
    (:func:`automnist.records.objective_direction`) and ``objective`` is a column of ``trials``."""
    objective_direction(objective, direction)
    if objective not in trials.columns:
        metrics = [c for c in trials.columns if any(k in str(c) for k in ("loss", "accuracy"))]
        raise ValueError(
            f"objective: no column {objective!r} in the trials frame; metric columns: {', '.join(metrics) or 'none'}"
        )


def ok_trials(trials: pd.DataFrame, objective: str | None = None) -> pd.DataFrame:
    """The ok trials (and, with ``objective``, only those that have a value)."""
    ok = trials[trials["status"] == "ok"]
    if objective is not None:
        ok = ok[pd.to_numeric(ok[objective], errors="coerce").notna()]
    return ok


def score_keys(values: pd.Series, direction: str) -> pd.Series:
    """:func:`automnist.records.score_key` of every value: higher is better, rounded so
    float noise ties, NaN where there is no finite value."""
    return pd.Series([score_key(v, direction) for v in values], index=values.index, dtype=float)


def is_missing(v: Any) -> bool:
    """Whether a frame cell holds no value (None, NaN or ``pd.NA``)."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def cell_label(v: Any) -> str:
    """The :func:`automnist.spec.value_label` of a frame cell: ``"none"`` when missing,
    numpy scalars as their Python values (a float column's 64.0 reads ``"64"``)."""
    if isinstance(v, np.generic):
        v = v.item()
    return "none" if is_missing(v) else value_label(v)


def sorted_values(values: Sequence[Any]) -> list[Any]:
    """Distinct values in natural order (numbers numerically, else as text), NaN last."""
    present = [v for v in values if not is_missing(v)]
    try:
        ordered = sorted(set(present))
    except TypeError:
        ordered = sorted(set(present), key=str)
    return ordered + ([np.nan] if len(present) < len(values) else [])


def levels(values: pd.Series, max_levels: int = 10, bins: int = 4) -> tuple[pd.Series, list[Any]]:
    """Group a hyperparameter's values into levels.

    Returns the level of every row and the levels in display order.  Numeric columns
    with more than ``max_levels`` distinct values are cut into ``bins`` quantile bins
    labelled ``[smallest, largest]`` value in the bin (3 significant digits);
    everything else keeps its own values.  Floats are compared at 12 significant digits, so a
    sampler's ``0.30000000000000004`` and a given ``0.3`` are one level (one label).
    """
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if pd.api.types.is_float_dtype(values):
        values = values.map(lambda v: v if not np.isfinite(v) else float(f"{v:.12g}"))
    if numeric and values.nunique(dropna=True) > max_levels:
        numbers = values.astype(float)
        codes = pd.qcut(numbers, q=bins, labels=False, duplicates="drop")
        bounds = numbers.groupby(codes).agg(["min", "max"])  # label bins by the values they hold
        labels = {code: f"[{lo:.3g}, {hi:.3g}]" for code, (lo, hi) in bounds.iterrows()}
        level = codes.map(labels).astype(object)
        return level, [labels[code] for code in sorted(labels)]
    level = values.astype(object).where(values.notna(), np.nan)
    return level, sorted_values(list(level.unique()))


def varying_params(trials: pd.DataFrame, objective: str | None = None) -> list[str]:
    """Hyperparameter names (without ``param_``) taking > 1 distinct value among ok trials."""
    ok = ok_trials(trials, objective)
    return [param_name(c) for c in param_columns(ok) if ok[c].nunique(dropna=False) > 1]
