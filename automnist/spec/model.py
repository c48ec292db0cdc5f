"""The spec's data model: hyperparameter types and the frozen sections of a spec.

:class:`~automnist.spec.search_spec.SearchSpec` holds them; the parsers in
:mod:`automnist.spec.parse` build them from YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from automnist.records import plain_value

__all__ = [
    "ChoiceParam",
    "Condition",
    "DataSpec",
    "DenoiseSpec",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "NoiseSpec",
    "Objective",
    "Param",
    "SearchConfig",
    "is_active",
    "param_default",
    "when_config",
]

#: ``when: {parent: value or [values]}`` as ((parent, allowed values), ...).
Condition = tuple[tuple[str, tuple[Any, ...]], ...]


def when_config(cond: Condition) -> dict[str, Any]:
    """The spec form of a condition: one allowed value as itself, several as a list."""
    return {parent: list(vals) if len(vals) != 1 else vals[0] for parent, vals in cond}


@dataclass(frozen=True)
class FixedParam:
    """A hyperparameter held at one value."""

    name: str
    value: Any
    when: Condition = ()

    def to_config(self) -> Any:
        """The spec form of this parameter (``parse_spec`` reads it back)."""
        if self.when:
            return {"value": plain_value(self.value), "when": when_config(self.when)}
        return plain_value(self.value)


@dataclass(frozen=True)
class ChoiceParam:
    """A categorical hyperparameter; values may be scalars, lists or mappings."""

    name: str
    values: tuple[Any, ...]
    default: Any = None
    when: Condition = ()

    def to_config(self) -> dict[str, Any]:
        """The spec form of this parameter (``parse_spec`` reads it back)."""
        out: dict[str, Any] = {"choice": [plain_value(v) for v in self.values]}
        if self.default is not None:
            out["default"] = plain_value(self.default)
        if self.when:
            out["when"] = when_config(self.when)
        return out


@dataclass(frozen=True)
class IntParam:
    """An integer range ``[low, high]`` (inclusive) with an optional step or log sampling."""

    name: str
    low: int
    high: int
    step: int | None = None
    log: bool = False
    default: int | None = None
    when: Condition = ()

    def to_config(self) -> dict[str, Any]:
        """The spec form of this parameter (``parse_spec`` reads it back)."""
        return _range_config("int", self)

    def grid(self) -> list[int]:
        """All values of the range (its step, or 1)."""
        step = self.step or 1
        return list(range(self.low, self.high + 1, step))


@dataclass(frozen=True)
class FloatParam:
    """A real range ``[low, high]``; ``log`` samples log-uniformly, ``step`` discretises."""

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False
    default: float | None = None
    when: Condition = ()

    def to_config(self) -> dict[str, Any]:
        """The spec form of this parameter (``parse_spec`` reads it back)."""
        return _range_config("float", self)

    def grid(self) -> list[float] | None:
        """All values of a stepped range, or None when the range is continuous."""
        if self.step is None:
            return None
        n = int(round((self.high - self.low) / self.step))
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]


Param = Union[FixedParam, ChoiceParam, IntParam, FloatParam]


def _range_config(kind: str, p: IntParam | FloatParam) -> dict[str, Any]:
    out: dict[str, Any] = {kind: [p.low, p.high]}
    if p.step is not None:
        out["step"] = p.step
    if p.log:
        out["log"] = True
    if p.default is not None:
        out["default"] = p.default
    if p.when:
        out["when"] = when_config(p.when)
    return out


@dataclass(frozen=True)
class NoiseSpec:
    """Noise added to images: ``gaussian`` (std) or ``salt_pepper`` (amount)."""

    kind: str = "gaussian"
    std: float = 0.5
    amount: float = 0.1
    on: tuple[str, ...] = ("train", "test")
    seed: int = 0


@dataclass(frozen=True)
class DenoiseSpec:
    """A convolutional denoising autoencoder in front of the classifier (seed 000, Q3).

    Trained once per search to map noisy training images (``data.noise``) to the clean
    ones, then applied to the training and test images the classifier sees.
    """

    filters: tuple[int, ...] = (32, 32)  # encoder Conv2D + MaxPooling2D per entry
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3


@dataclass(frozen=True)
class DataSpec:
    """Where the images come from and how they are split."""

    dataset: str = "digits"
    subset: int | None = None
    validation_split: float = 0.2
    test_split: float = 0.2  # only for data sets without their own test split
    split_seed: int = 0
    data_dir: str | None = None
    noise: NoiseSpec | None = None
    image_size: tuple[int, int] | None = None  # (height, width) the images are resized to at load


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop a trial's training when ``monitor`` has not improved by ``min_delta`` for
    ``patience`` epochs, and restore the weights of its best epoch."""

    patience: int = 3
    monitor: str = "val_loss"
    min_delta: float = 0.0


#: The ensemble's candidates with ``strategy: auto`` when ``final.ensemble`` is not given.
AUTO_ENSEMBLE = 5


@dataclass(frozen=True)
class FinalSpec:
    """What is kept after a search (the ``final:`` section).

    ``refit``: train the best configuration again on training + validation images for the
    epoch count its learning curve supports, and keep that model (None: only for
    ``strategy: auto``).  ``ensemble``: choose an ensemble among the top ``ensemble`` fully
    trained trials' models (and the final model) on the validation images, and keep it when
    it has more than one member (1: no ensemble; None: 5 for ``strategy: auto``, else 1).
    """

    refit: bool | None = None
    ensemble: int | None = None


@dataclass(frozen=True)
class SearchConfig:
    """How to search and with what budget."""

    strategy: str = "random"
    max_trials: int = 10
    epochs: int = 5
    time_budget: float | None = None  # seconds
    seed: int = 0
    cv: int | None = None  # k-fold cross-validation per trial
    n_jobs: int = 1  # scikit-learn strategies
    factor: int = 3  # hyperband / successive halving
    resource: str = "epochs"  # successive halving: epochs or n_samples
    n_iter: int | None = None  # sklearn-random; defaults to max_trials
    repeats: int = 1  # sweep: seeds per value
    chain: bool = False  # sweep: carry each winner into the baseline
    chain_alpha: float | None = None  # sweep + chain: carry a winner only if Welch p < alpha vs the baseline value
    early_stopping: EarlyStoppingSpec | None = None  # stop a trial that no longer improves


@dataclass(frozen=True)
class Objective:
    """The metric a search optimises."""

    name: str = "val_accuracy"
    direction: str = "max"


def param_default(p: Param) -> Any:
    """The value a searched parameter takes when it is not searched (baseline)."""
    if isinstance(p, FixedParam):
        return p.value
    if p.default is not None:
        return p.default
    if isinstance(p, ChoiceParam):
        return p.values[0]
    return p.low


def is_active(p: Param, values: Mapping[str, Any]) -> bool:
    """Whether a conditional parameter applies given its parents' values."""
    return all(values.get(parent) in allowed for parent, allowed in p.when)
