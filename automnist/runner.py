"""One trial: fit (or k folds), evaluate, respect budgets, free memory -> TrialRecord.

The runner knows nothing about tuners or stores.  It never raises for a bad
configuration: an unbuildable one comes back ``infeasible``, one that crashes or
diverges comes back ``failed``, each with its reason.  Only ``KeyboardInterrupt`` and
``SystemExit`` pass through.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automnist.builders import build_model, check_feasible, uses_one_hot
from automnist.callbacks import deadline_callback, early_stopping_callback, nan_callback, stop_reason_of
from automnist.data import Dataset, stratified_split
from automnist.errors import Diverged, InfeasibleConfig
from automnist.records import TrialRecord
from automnist.spec import EarlyStoppingSpec

__all__ = ["TrialData", "run_trial", "fit_model", "targets_for_loss", "split_indices", "subset_indices", "free_memory",
           "forget_custom_gradients", "check_finite"]

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
    def from_dataset(cls, ds: Dataset) -> TrialData:
        return cls(ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.n_classes)


def targets_for_loss(y: np.ndarray, n_classes: int, loss: str) -> np.ndarray:
    """Class indices as ``loss`` needs them: integers, or one-hot float32 rows."""
    y = np.asarray(y, dtype=np.int64)
    if uses_one_hot(loss):
        return np.eye(n_classes, dtype=np.float32)[y]
    return y


def split_indices(
    y: np.ndarray, *, cv: int | None, validation_split: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation index pairs: stratified k folds, or one stratified hold-out
    (:func:`automnist.data.stratified_split`, random when a class is too small).

    The split depends only on ``seed`` (the search seed), so every trial of a search
    sees the same folds and their scores can be compared pairwise.
    """
    from sklearn.model_selection import StratifiedKFold

    if cv:
        folds = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in folds.split(np.arange(len(y)), y)]
    tr, va, _ = stratified_split(y, seed, test_size=validation_split)
    return [(tr, va)]


def subset_indices(index: np.ndarray, y: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` of the indices ``index`` into ``y``, stratified by class and seeded (all of
    them when ``size`` is None or not smaller)."""
    if size is None or size >= len(index):
        return index
    first, _, _ = stratified_split(np.asarray(y)[index], seed, train_size=int(size))
    return index[first]


def check_finite(history: Mapping[str, Sequence[float]], where: str = "") -> None:
    """Raise :class:`~automnist.errors.Diverged` when a Keras ``History.history`` has no
    training loss or ends with a NaN or infinite ``loss`` / ``val_loss``: the one rule for
    "training diverged"."""
    losses = list(history.get("loss", []))
    last = [v[-1] for m in ("loss", "val_loss") if (v := list(history.get(m, [])))]
    if not losses or not all(math.isfinite(float(v)) for v in last):
        raise Diverged(f"training diverged{' ' + where if where else ''} (loss is NaN or inf) after {len(losses)} epochs")


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
    initial_epoch: int = 0,
) -> Any:
    """``model.fit`` with the configuration's batch size; returns the History.

    ``epochs`` is the epoch to end at, so a model trained for ``initial_epoch`` epochs
    continues for ``epochs - initial_epoch`` more."""
    return model.fit(
        x,
        y,
        batch_size=int(values.get("batch_size") or 32),
        epochs=int(epochs),
        initial_epoch=int(initial_epoch),
        validation_data=validation_data,
        callbacks=callbacks or [],
        verbose=verbose,
        shuffle=True,
    )


def free_memory() -> None:
    """Drop Keras' global state and collect garbage (``clear_session(free_memory=True)``
    runs ``gc.collect`` itself: a second collection costs ~0.4 s a trial and frees nothing
    more), so memory stays flat across trials."""
    import keras

    keras.backend.clear_session(free_memory=True)


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
    max_epochs: int | None = None,
    early_stopping: EarlyStoppingSpec | None = None,
    callbacks: Callable[[int], list[Any]] | None = None,
    resume_dir: Path | None = None,
    initial_epoch: int = 0,
    checkpoint_dir: Path | None = None,
    rung_epochs: Sequence[int] = (),
    holdout: bool = True,
    train_images: int | None = None,
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
    max_epochs : int, optional
        The epochs a fully trained model of this search gets (default: ``epochs``); a
        trial trained for fewer (Hyperband's first rungs) is not ``fully_trained``.
    early_stopping : EarlyStoppingSpec, optional
        Stop when the monitored metric stops improving and keep the best epoch's weights
        (its metrics are the trial's; ``metrics["best_epoch"]`` says which epoch).
    callbacks : callable, optional
        ``callbacks(fold)`` gives more Keras callbacks for a fold (e.g. pruning).  A
        callback with a ``stop_reason`` ends the trial's training (no later folds).
    resume_dir, initial_epoch : optional
        Continue the models saved in ``resume_dir`` (``fold<k>.keras``, weights and
        optimizer state) from epoch ``initial_epoch`` instead of training new ones.
    checkpoint_dir : Path, optional
        Save each fold's trained model there, for a later trial to continue.
    rung_epochs : sequence of int
        Epochs at which to record the trial's metrics as rungs (multi-fidelity).
    holdout : bool
        False (without ``cv``): train on every training image, with no validation
        metrics (the final refit).
    train_images : int, optional
        Train on a stratified subset of this many of the training split's images (the
        same subset for every trial of a search: it is drawn with ``split_seed``); the
        validation images stay the same (``strategy: auto`` on large data sets).

    Returns
    -------
    TrialRecord
    """
    import keras

    started = time.time()
    t0 = time.perf_counter()
    params = dict(values)
    n_epochs = int(values.get("epochs") or epochs)
    record = TrialRecord(trial_id=str(trial_id), number=int(number), params=params, seed=int(seed), started_at=started,
                         max_epochs=max(n_epochs, int(max_epochs or 0)))
    vs = float(values.get("validation_split") or validation_split)
    net = None
    try:
        check_feasible(values, data.input_shape, model)
        loss = str(values.get("loss", "categorical_crossentropy"))
        y_all = targets_for_loss(data.y_train, data.n_classes, loss)
        y_test = None if data.y_test is None else targets_for_loss(data.y_test, data.n_classes, loss)
        splits = split_indices(data.y_train, cv=cv, validation_split=vs, seed=split_seed) if holdout or cv else \
            [(np.arange(len(data.y_train)), np.arange(0))]
        fold_rows: list[dict[str, Any]] = []
        for fold, (tr, va) in enumerate(splits):
            tr = subset_indices(tr, data.y_train, train_images, split_seed)
            if net is not None:
                del net
                free_memory()
            keras.utils.set_random_seed(int(seed) + fold)
            net = _initial_model(values, data, model, int(seed) + fold, resume_dir, fold)
            record.n_params = int(net.count_params())
            fold_callbacks = _callbacks(deadline, early_stopping) + (callbacks(fold) if callbacks else [])
            hist = fit_model(
                net, values, data.x_train[tr], y_all[tr], epochs=n_epochs, initial_epoch=initial_epoch,
                validation_data=(data.x_train[va], y_all[va]) if len(va) else None, callbacks=fold_callbacks,
                verbose=verbose,
            )
            h = hist.history
            for metric in _EPOCH_METRICS:
                for e, val in enumerate(h.get(metric, [])):
                    record.history.append({"fold": fold, "epoch": initial_epoch + e + 1, "metric": metric,
                                           "value": float(val)})
            check_finite(h, f"in fold {fold}")
            kept = _kept_epoch(fold_callbacks, initial_epoch)  # early stopping restored this epoch's weights
            row: dict[str, Any] = {"fold": fold}
            for metric in _EPOCH_METRICS:
                if h.get(metric):
                    row[metric] = float(h[metric][-1 if kept is None else kept])
            if kept is not None:
                row["best_epoch"] = float(initial_epoch + kept + 1)
            if data.x_test is not None and y_test is not None and len(data.x_test):
                test_loss, test_acc = net.evaluate(data.x_test, y_test, batch_size=512, verbose=0)
                row["test_loss"], row["test_accuracy"] = float(test_loss), float(test_acc)
            record.epochs = max(record.epochs, initial_epoch + len(h.get("loss", [])))
            record.images = int(len(tr))
            fold_rows.append(row)
            if checkpoint_dir is not None:
                checkpoint_dir.mkdir(parents=True, exist_ok=True)
                net.save(checkpoint_dir / f"fold{fold}.keras")
            record.stop_reason = stop_reason_of(fold_callbacks) or record.stop_reason
            if record.stop_reason in ("pruned", "budget"):
                break
        metric_names = sorted({k for r in fold_rows for k in r if k != "fold"})
        for m in metric_names:
            vals = [r[m] for r in fold_rows if m in r]
            record.metrics[m] = float(np.mean(vals))
            if cv:
                record.metrics[f"{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        if cv:
            record.folds = fold_rows
        record.rungs = _rungs(record, rung_epochs)
        record.status = "ok"
        if record.stop_reason == "budget":
            record.error = f"stopped by the time budget after {record.epochs} of {n_epochs} epochs"
        if on_model is not None and net is not None:
            on_model(net, record)
    except InfeasibleConfig as exc:
        record.status, record.error = "infeasible", str(exc)
    except Diverged as exc:
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


def _initial_model(values: Mapping[str, Any], data: TrialData, model: str, seed: int, resume_dir: Path | None,
                   fold: int) -> Any:
    """A new model, or the one saved for ``fold`` in ``resume_dir`` (weights and optimizer state)."""
    path = None if resume_dir is None else resume_dir / f"fold{fold}.keras"
    if path is not None and path.is_file():
        import keras

        return keras.saving.load_model(path, safe_mode=True)
    return build_model(values, data.input_shape, data.n_classes, model=model, seed=seed)


def _callbacks(deadline: float | None, early_stopping: EarlyStoppingSpec | None) -> list[Any]:
    out: list[Any] = [nan_callback()]
    if deadline is not None:
        out.append(deadline_callback(deadline))
    if early_stopping is not None:
        out.append(early_stopping_callback(early_stopping))
    return out


def _kept_epoch(callbacks: list[Any], initial_epoch: int = 0) -> int | None:
    """The 0-based epoch of this fit whose weights early stopping restored, if any (Keras
    numbers a continued fit's epochs from ``initial_epoch``)."""
    for cb in callbacks:
        if getattr(cb, "restore_best_weights", False) and getattr(cb, "best_weights", None) is not None:
            return int(cb.best_epoch) - initial_epoch
    return None


def _rungs(record: TrialRecord, rung_epochs: Sequence[int]) -> list[dict[str, Any]]:
    """One row per rung epoch the trial reached: its fold-mean metrics at that epoch."""
    out = []
    for k, epoch in enumerate(sorted(set(int(e) for e in rung_epochs))):
        rows = [h for h in record.history if h["epoch"] == epoch]
        if not rows:
            continue
        metrics = {m: float(np.mean([h["value"] for h in rows if h["metric"] == m]))
                   for m in sorted({h["metric"] for h in rows})}
        out.append({"rung": k, "epochs": epoch, "images": record.images, **metrics})
    return out


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
