"""The Keras callbacks a trial trains with, each saying why it stopped training.

Every callback here sets ``stop_reason`` (one of :data:`automnist.records.STOP_REASONS`)
when it ends training, so the runner records why a trial trained fewer epochs than
planned: ``budget`` (:func:`deadline_callback`), ``early_stopping``
(:func:`early_stopping_callback`) or ``pruned`` (:func:`pruning_callback`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from automnist.spec import EarlyStoppingSpec

__all__ = ["deadline_callback", "plateau_callback", "early_stopping_callback", "nan_callback", "pruning_callback",
           "progress_checkpoint", "stop_reason_of"]


def nan_callback() -> Any:
    """Stop at the end of an epoch whose loss is NaN or infinite (the runner then records
    the trial as diverged).  Keras' ``TerminateOnNaN`` checks every batch, which makes Keras
    fetch each batch's logs from the device and slows every trial down."""
    import keras

    class StopOnNaN(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNaN()


def deadline_callback(deadline: float) -> Any:
    """Stop at the end of an epoch when the next epoch, as long as the slowest one so far,
    would end after ``deadline`` (``time.time()`` seconds).  The first epoch also traces the
    graph: once a later one is seen, only the later ones count (a refit planned to end just
    before its deadline was otherwise cut one epoch short, and thrown away)."""
    import keras

    class Deadline(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stop_reason: str | None = None
            self._epoch_start = 0.0
            self._seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_start = time.time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            now = time.time()
            self._seconds.append(now - self._epoch_start)
            slowest = max(self._seconds[1:] or self._seconds)
            last = epoch + 1 >= int(self.params.get("epochs") or 0)
            if not last and now + slowest >= deadline:
                self.stop_reason = "budget"
                self.model.stop_training = True

    return Deadline()


def early_stopping_callback(spec: EarlyStoppingSpec) -> Any:
    """Keras' ``EarlyStopping`` with the spec's settings, restoring the best epoch's weights."""
    import keras

    class EarlyStopping(keras.callbacks.EarlyStopping):
        @property
        def stop_reason(self) -> str | None:
            return "early_stopping" if self.stopped_epoch > 0 else None

    return EarlyStopping(monitor=spec.monitor, patience=spec.patience, min_delta=spec.min_delta,
                         restore_best_weights=True, mode="min" if spec.monitor.endswith("loss") else "max")


def plateau_callback(monitor: str = "val_loss") -> Any:
    """Keras' ``ReduceLROnPlateau``: the learning rate divided by 5 when ``monitor`` has not
    improved for 2 epochs (a long training's step size follows its validation curve; a
    fixed schedule such as a cosine decays too early in a short one: measured on
    MNIST-10k, 8 epochs of Adam at 1e-3 ended 0.2-0.4 points lower with it)."""
    import keras

    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.2, patience=2, min_lr=1e-6,
                                             mode="min" if monitor.endswith("loss") else "max")


def pruning_callback(report: Callable[[int, dict[str, float], float], str | None]) -> Any:
    """Call ``report(epoch, logs, seconds)`` (1-based epoch, the seconds it took) after every
    epoch and stop training when it returns a stop reason: ``"pruned"`` (e.g. optuna's
    ``trial.report`` + ``should_prune``) or ``"budget"`` (the search's share of a time
    budget is spent)."""
    import keras

    class Pruning(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stop_reason: str | None = None
            self._epoch_start = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch_start = time.time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds = time.time() - self._epoch_start
            reason = report(epoch + 1, {k: float(v) for k, v in (logs or {}).items()}, seconds)
            if reason is not None:
                self.stop_reason = reason
                self.model.stop_training = True

    return Pruning()


def progress_checkpoint(monitor: str, sign: float, floor: float | None, save: Callable[[Any], None],
                        every: float = 60.0) -> Any:
    """Call ``save(model)`` at the end of an epoch whose ``monitor`` beats ``floor`` and every
    epoch before (``sign``: +1 where higher is better), at most once every ``every`` seconds.

    A long training then leaves its best model so far on disk as it goes (the final model on
    every image trains for many minutes: stopped or killed, it keeps what it reached), the
    saving's cost (``best.keras`` and its test predictions) spread over at least ``every``
    seconds of training.  An epoch that improves while saving is held back is not saved
    (its weights are gone by the time the wait ends); the next improvement is."""
    import keras

    class ProgressCheckpoint(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best = -math.inf if floor is None else sign * floor
            self.saved: list[int] = []  # the (0-based) epochs saved
            self._last = -math.inf

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None or not math.isfinite(float(value)) or sign * float(value) <= self.best:
                return
            self.best = sign * float(value)
            if time.time() - self._last >= every:
                save(self.model)
                self._last = time.time()
                self.saved.append(epoch)

    return ProgressCheckpoint()


def stop_reason_of(callbacks: list[Any]) -> str | None:
    """The first stop reason any of ``callbacks`` gives (pruning before early stopping before
    the budget), or None when training ran its planned epochs."""
    reasons = {getattr(cb, "stop_reason", None) for cb in callbacks}
    return next((r for r in ("pruned", "early_stopping", "budget") if r in reasons), None)
