"""A trial's values as TensorBoard and MLflow take them: searched hyperparameters as
scalars or labels, per-epoch metrics with folds averaged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from automnist.records import TrialRecord
from automnist.space import active_params
from automnist.spec import SearchSpec, value_label

__all__ = ["epoch_scalars", "hparam_values", "scalar"]


def scalar(value: Any) -> bool | int | float | str:
    """A hyperparameter value as a bool, number or text (``[16, 32]`` -> ``"16-32"``)."""
    return value if isinstance(value, (bool, int, float, str)) else value_label(value)


def hparam_values(spec: SearchSpec, params: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """The searched hyperparameters that apply to ``params``, as :func:`scalar` values."""
    return {name: scalar(value) for name, value in active_params(spec, params).items()}


def epoch_scalars(record: TrialRecord) -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` of a trial's history, folds averaged."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in record.history:
        sums[str(row["metric"])][int(row["epoch"])].append(float(row["value"]))
    return {m: {e: sum(v) / len(v) for e, v in sorted(by_epoch.items())} for m, by_epoch in sums.items()}
