"""A run's files besides the store: the kept model (``best.keras``), its test-set
predictions (``predictions.npz``, read by the report) and the ensemble members."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from automnist.data import Dataset
from automnist.records import TrialRecord
from automnist.runs import replaced_whole

__all__ = ["save_best_model", "save_provisional_best", "settle_best", "save_predictions", "keep_member", "member_path",
           "MODEL_FILE", "PREDICTIONS_FILE", "ENSEMBLE_DIR"]

MODEL_FILE = "best.keras"
PREDICTIONS_FILE = "predictions.npz"
#: Folder of a run's directory holding the ensemble members' models (``final: {ensemble: K}``).
ENSEMBLE_DIR = "ensemble"
#: Folder of a run's directory holding the kept model while a provisional one replaces it.
ASIDE_DIR = "best-before"


def save_best_model(model: Any, dataset: Dataset | None, directory: Path, trial_id: str,
                    prob: np.ndarray | None = None) -> None:
    """Write ``best.keras`` and ``predictions.npz`` for ``model`` (each replaced atomically;
    ``prob``: its test-set probabilities when already computed)."""
    directory.mkdir(parents=True, exist_ok=True)
    with replaced_whole(directory / MODEL_FILE, ".keras") as tmp:
        model.save(tmp)
    if dataset is None or dataset.x_test is None or not len(dataset.x_test):
        return
    if prob is None:
        prob = np.asarray(model.predict(dataset.x_test, batch_size=512, verbose=0), dtype=np.float32)
    save_predictions(prob, dataset, directory, trial_id)


def save_provisional_best(model: Any, dataset: Dataset | None, directory: Path, trial_id: str) -> None:
    """:func:`save_best_model` for a model still training, not yet known to be kept: the first
    such save sets the kept ``best.keras`` and ``predictions.npz`` aside, for :func:`settle_best`
    to put back if it is not kept in the end.  Killed before that, the run keeps the provisional
    model (it already scored better on the validation images) and the set-aside files."""
    aside = directory / ASIDE_DIR
    if not aside.is_dir():
        tmp = directory / f"{ASIDE_DIR}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in (MODEL_FILE, PREDICTIONS_FILE):
            if (directory / name).is_file():
                shutil.copy2(directory / name, tmp / name)
        tmp.rename(aside)
    save_best_model(model, dataset, directory, trial_id)


def settle_best(directory: Path, kept: bool) -> None:
    """After :func:`save_provisional_best`: drop the set-aside files when the provisional model
    was kept, else put them back over it (no-op when nothing was saved provisionally)."""
    aside = directory / ASIDE_DIR
    if not aside.is_dir():
        return
    if not kept:
        for name in (MODEL_FILE, PREDICTIONS_FILE):
            if (aside / name).is_file():
                os.replace(aside / name, directory / name)
            else:  # there was none before
                (directory / name).unlink(missing_ok=True)
    shutil.rmtree(aside, ignore_errors=True)


def save_predictions(prob: np.ndarray, dataset: Dataset, directory: Path, trial_id: str) -> None:
    """Write ``predictions.npz``: test labels and probabilities, up to 64 misclassified test
    images and 32 training images (for the report's figures)."""
    pred = prob.argmax(axis=1)
    wrong = np.flatnonzero(pred != dataset.y_test)[:64]
    rng = np.random.default_rng(0)
    sample = rng.choice(len(dataset.x_train), size=min(32, len(dataset.x_train)), replace=False)
    with replaced_whole(directory / PREDICTIONS_FILE, ".npz") as tmp:
        np.savez_compressed(
            tmp,
            y_true=np.asarray(dataset.y_test),
            y_prob=np.asarray(prob, dtype=np.float32),
            class_names=np.asarray(dataset.class_names, dtype=str),
            mis_images=dataset.x_test[wrong],
            mis_true=np.asarray(dataset.y_test)[wrong],
            mis_pred=pred[wrong],
            sample_images=dataset.x_train[sample],
            sample_labels=np.asarray(dataset.y_train)[sample],
            trial_id=np.asarray(str(trial_id)),
        )


def member_path(run_dir: Path, trial_id: str) -> Path:
    """Where a run keeps the model of ``trial_id`` as a candidate of its ensemble."""
    return run_dir / ENSEMBLE_DIR / f"{trial_id}.keras"


def keep_member(run_dir: Path, model: Any, record: TrialRecord, ranked: list[TrialRecord], k: int) -> None:
    """Keep ``model`` as an ensemble member (:func:`member_path`) when ``record`` is among the
    top ``k`` fully trained trials of ``ranked`` (best first), and drop members that fell out."""
    top = [r.trial_id for r in ranked if r.fully_trained][:k]
    directory = run_dir / ENSEMBLE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    if record.trial_id in top:
        model.save(member_path(run_dir, record.trial_id))
    for path in directory.glob("*.keras"):
        if path.stem not in top:
            path.unlink(missing_ok=True)
