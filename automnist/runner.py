"""One trial: fit (or k folds), evaluate, respect budgets, free memory -> TrialRecord.

The runner knows nothing about tuners or stores.  It never raises for a bad
configuration: an unbuildable one comes back ``infeasible``, one that crashes or
diverges comes back ``failed``, each with its reason.  Only ``KeyboardInterrupt`` and
``SystemExit`` pass through.
"""

from __future__ import annotations

import functools
import gc
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from automnist.errors import InfeasibleConfig
from automnist.records import TrialRecord

__all__ = ["TrialData", "run_trial", "fit_model", "encode_labels", "split_indices", "free_memory",
           "forget_custom_gradients"]

_EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class TrialData:
    """Arrays a trial trains on (loaded once per search, shared by every trial)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x_train.shape[1:])

    @classmethod
    def from_dataset(cls, ds: Any) -> TrialData:
        return cls(ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.n_classes)


def encode_labels(y: np.ndarray, n_classes: int, loss: str) -> np.ndarray:
    """Integer labels, or one-hot float32 rows when ``loss`` needs them."""
    from automnist.builders import uses_one_hot

    y = np.asarray(y, dtype=np.int64)
    if uses_one_hot(loss):
        return np.eye(n_classes, dtype=np.float32)[y]
    return y


def split_indices(
    y: np.ndarray, *, cv: int | None, validation_split: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation index pairs: stratified k folds, or one stratified hold-out.

    The split depends only on ``seed`` (the search seed), so every trial of a search
    sees the same folds and their scores can be compared pairwise.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    idx = np.arange(len(y))
    if cv:
        folds = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in folds.split(idx, y)]
    tr, va = train_test_split(idx, test_size=validation_split, stratify=y, random_state=seed)
    return [(np.sort(tr), np.sort(va))]


def _deadline_callback(deadline: float) -> Any:
    """A Keras callback that stops training at the end of the epoch passing ``deadline``."""
    import keras

    class Deadline(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.hit = False

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.time() >= deadline:
                self.hit = True
                self.model.stop_training = True

    return Deadline()


def fit_model(
    model: Any,
    values: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: list[Any] | None = None,
    verbose: int = 0,
) -> Any:
    """``model.fit`` with the configuration's batch size; returns the History."""
    return model.fit(
        x,
        y,
        batch_size=int(values.get("batch_size") or 32),
        epochs=int(epochs),
        validation_data=validation_data,
        callbacks=callbacks or [],
        verbose=verbose,
        shuffle=True,
    )


def free_memory() -> None:
    """Drop Keras' global state and collect garbage, so memory stays flat across trials."""
    import keras

    keras.backend.clear_session(free_memory=True)
    gc.collect()


def _run_trial(
    values: Mapping[str, Any],
    data: TrialData,
    *,
    trial_id: str,
    number: int = 0,
    model: str = "cnn",
    epochs: int = 5,
    validation_split: float = 0.2,
    cv: int | None = None,
    seed: int = 0,
    split_seed: int = 0,
    deadline: float | None = None,
    on_model: Callable[[Any, TrialRecord], None] | None = None,
    verbose: int = 0,
) -> TrialRecord:
    """Train and evaluate one configuration.

    Parameters
    ----------
    values : mapping
        Complete configuration.  ``values["epochs"]`` / ``values["validation_split"]``,
        when set, override the ``epochs`` / ``validation_split`` arguments.
    data : TrialData
    trial_id, number : identify the trial in its run.
    model : {"cnn", "mlp"}
    epochs : int
        Epochs when the configuration does not say.
    validation_split : float
        Hold-out fraction (stratified) when ``cv`` is None.
    cv : int, optional
        Stratified k-fold cross-validation: k models, metrics are fold means.
    seed : int
        Seeds weight initialisation, shuffling and augmentation of this trial.
    split_seed : int
        Seeds the train/validation split (the same for every trial of a search).
    deadline : float, optional
        ``time.time()`` after which training stops at the next epoch end.
    on_model : callable, optional
        Called as ``on_model(model, record)`` with the last trained model before it is
        freed (to save the best model).

    Returns
    -------
    TrialRecord
    """
    import keras

    from automnist.builders import build_model, check_feasible

    started = time.time()
    t0 = time.perf_counter()
    params = dict(values)
    record = TrialRecord(trial_id=str(trial_id), number=int(number), params=params, seed=int(seed), started_at=started)
    n_epochs = int(values.get("epochs") or epochs)
    vs = float(values.get("validation_split") or validation_split)
    net = None
    try:
        check_feasible(values, data.input_shape, model)
        loss = str(values.get("loss", "categorical_crossentropy"))
        y_all = encode_labels(data.y_train, data.n_classes, loss)
        y_test = None if data.y_test is None else encode_labels(data.y_test, data.n_classes, loss)
        splits = split_indices(data.y_train, cv=cv, validation_split=vs, seed=split_seed)
        fold_rows: list[dict[str, Any]] = []
        stopped_by_budget = False
        for fold, (tr, va) in enumerate(splits):
            if net is not None:
                del net
                free_memory()
            keras.utils.set_random_seed(int(seed) + fold)
            net = build_model(values, data.input_shape, data.n_classes, model=model, seed=int(seed) + fold)
            record.n_params = int(net.count_params())
            callbacks: list[Any] = [keras.callbacks.TerminateOnNaN()]
            budget = _deadline_callback(deadline) if deadline is not None else None
            if budget is not None:
                callbacks.append(budget)
            hist = fit_model(
                net, values, data.x_train[tr], y_all[tr], epochs=n_epochs,
                validation_data=(data.x_train[va], y_all[va]), callbacks=callbacks, verbose=verbose,
            )
            h = hist.history
            for metric in _EPOCH_METRICS:
                for e, val in enumerate(h.get(metric, [])):
                    record.history.append({"fold": fold, "epoch": e + 1, "metric": metric, "value": float(val)})
            row: dict[str, Any] = {"fold": fold}
            for metric in _EPOCH_METRICS:
                if h.get(metric):
                    row[metric] = float(h[metric][-1])
            if any(not math.isfinite(row.get(m, 0.0)) for m in ("loss", "val_loss")) or len(h.get("loss", [])) == 0:
                raise _Diverged(f"training diverged in fold {fold} (loss is NaN or inf) after {len(h.get('loss', []))} epochs")
            if data.x_test is not None and y_test is not None and len(data.x_test):
                test_loss, test_acc = net.evaluate(data.x_test, y_test, batch_size=512, verbose=0)
                row["test_loss"], row["test_accuracy"] = float(test_loss), float(test_acc)
            record.epochs = max(record.epochs, len(h.get("loss", [])))
            fold_rows.append(row)
            if budget is not None and budget.hit:
                stopped_by_budget = True
                break
        metric_names = sorted({k for r in fold_rows for k in r if k != "fold"})
        for m in metric_names:
            vals = [r[m] for r in fold_rows if m in r]
            record.metrics[m] = float(np.mean(vals))
            if cv:
                record.metrics[f"{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        if cv:
            record.folds = fold_rows
        record.status = "ok"
        if stopped_by_budget:
            record.error = f"stopped by the time budget after {record.epochs} of {n_epochs} epochs"
        if on_model is not None and net is not None:
            on_model(net, record)
    except InfeasibleConfig as exc:
        record.status, record.error = "infeasible", str(exc)
    except _Diverged as exc:
        record.status, record.error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded, the search goes on
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}".strip()[:2000]
    finally:
        if net is not None:
            del net
        free_memory()
    record.duration_s = time.perf_counter() - t0
    record.ended_at = time.time()
    return record


class _Diverged(Exception):
    pass


@contextmanager
def forget_custom_gradients() -> Iterator[None]:
    """Unregister the ``CustomGradient-N`` gradients TensorFlow registers while tracing.

    TensorFlow's default distribution strategy all-reduces gradients through a
    ``tf.custom_gradient`` inside every traced train step; each trace registers a gradient
    function in a process-global registry that is never cleared and that keeps the whole
    traced graph alive (about 6 MB per fit, so a long GridSearchCV grows without bound even
    with ``clear_session``).  That gradient is only needed while the train step is traced
    (nothing differentiates an optimizer update), so the entries added during the block
    are removed afterwards.  Private TensorFlow API: skipped silently if it changes.
    """
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
        before = set(registry)
    except (ImportError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        for key in set(registry) - before:
            if isinstance(key, str) and key.startswith("CustomGradient-"):
                registry.pop(key, None)


@functools.wraps(_run_trial)
def run_trial(*args: Any, **kwargs: Any) -> TrialRecord:
    # clear_session alone leaves every trial's traced graph alive (see forget_custom_gradients)
    with forget_custom_gradients():
        return _run_trial(*args, **kwargs)
