"""Denoising autoencoders in front of a classifier (seed 000, questions 2 and 3).

* :func:`compare_denoising` -- the seed's comparison: the same classifier configuration
  and seed trained and tested on clean, noisy and denoised images, as a DataFrame and,
  optionally, a stored run (strategy ``denoise-compare``, trials ``clean``, ``noisy``,
  ``denoised``) that :func:`automnist.aggregate.denoising_table` reads back.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from automnist.aggregate.denoise import COMPARE_STRATEGY, CONDITIONS, denoising_table
from automnist.autoencoder import denoise_dataset
from automnist.data import Dataset, apply_noise, load_dataset
from automnist.errors import SpecError
from automnist.records import TrialRecord
from automnist.runner import TrialData, run_trial
from automnist.runs import create_spec_run, default_run_name
from automnist.spec import LR_FROM_LR_FIND, DenoiseSpec, SearchSpec
from automnist.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CONDITIONS", "COMPARE_STRATEGY", "compare_denoising"]


def compare_denoising(
    spec: SearchSpec,
    *,
    dataset: Dataset | None = None,
    data_dir: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    results_dir: str | Path | None = None,
    run_name: str | None = None,
    verbose: int = 0,
) -> pd.DataFrame:
    """Test accuracy of one classifier on clean, noisy and denoised images.

    The classifier is the spec's baseline configuration (``spec.default_values()``),
    trained with the same seed and the same train/validation split under each condition:
    ``clean`` (no noise), ``noisy`` (``data.noise`` on the parts it names) and
    ``denoised`` (those images passed through the autoencoder of ``spec.denoise``, or the
    default :class:`~automnist.spec.DenoiseSpec`, trained noisy -> clean on the training
    images).  The test images are treated like the training images of their condition.

    Parameters
    ----------
    spec : SearchSpec
        Needs ``data.noise``.
    dataset : Dataset, optional
        The *clean* data (default: load ``spec.data`` without noise).
    data_dir : str, optional
    epochs : int, optional
        Classifier epochs (default ``search.epochs``).
    seed : int, optional
        Default ``search.seed``.
    results_dir : path, optional
        Store the comparison as a run (kind ``search``, strategy ``denoise-compare``,
        trials ``clean``, ``noisy``, ``denoised``; the autoencoder's settings and final loss
        under ``config["denoise_compare"]``).
    run_name : str, optional
        Default ``<spec name>-denoise-<time>``.
    verbose : int

    Returns
    -------
    DataFrame
        One row per condition (``clean``, ``noisy``, ``denoised``): ``condition,
        test_accuracy, test_loss, val_accuracy, status, trial_id`` and ``run``.

    Raises
    ------
    SpecError
        When the spec has no ``data.noise``, or its learning rate is ``from_lr_find``.
    """
    noise = spec.data.noise
    if noise is None:
        raise SpecError(spec.source, "data.noise", "compare_denoising needs a noise setting to compare against")
    values = spec.default_values()
    if values.get("learning_rate") == LR_FROM_LR_FIND:
        raise SpecError(spec.source, "params.learning_rate",
                        f"compare_denoising needs a number: resolve {LR_FROM_LR_FIND!r} first (automnist lr-find --write-spec)")
    seed = spec.search.seed if seed is None else int(seed)
    epochs = epochs or spec.search.epochs
    d = spec.data
    cfg = spec.denoise or DenoiseSpec()
    # the data first: a data set that cannot be loaded must not leave an empty run behind
    clean = dataset if dataset is not None else load_dataset(
        d.dataset, data_dir=data_dir or d.data_dir, subset=d.subset, seed=d.split_seed,
        test_split=d.test_split, image_size=d.image_size)
    store = name = None
    if results_dir is not None:  # the run exists before training: a clash fails now, trials commit as they end
        store = Store.at(results_dir)
        name = run_name or default_run_name(spec, "denoise")
        note = {"conditions": list(CONDITIONS), "denoise": dataclasses.asdict(cfg), "noise": dataclasses.asdict(noise),
                "epochs": epochs}
        note["denoise"]["filters"] = list(cfg.filters)
        note["noise"]["on"] = list(noise.on)
        try:
            create_spec_run(store, name, spec, kind="denoise", strategy=COMPARE_STRATEGY, seed=seed,
                            extra_config={"denoise_compare": note})
        except BaseException:
            store.close()
            raise
    records: list[TrialRecord] = []
    try:
        with store.recording(name) if store is not None else contextlib.nullcontext():
            noisy = apply_noise(clean, noise)
            denoised, ae = denoise_dataset(noisy, clean.x_train, cfg, noise, seed)
            if store is not None:
                store.update_run_config(name, {"denoise_compare": {**note, "denoiser_loss": ae.loss_}})
            for number, (condition, ds) in enumerate(zip(CONDITIONS, (clean, noisy, denoised))):
                record = run_trial(
                    values, TrialData.from_dataset(ds), trial_id=condition, number=number, model=spec.model,
                    epochs=epochs, validation_split=d.validation_split, cv=None, seed=seed,
                    split_seed=spec.search.seed, verbose=verbose,
                )
                records.append(record)
                if store is not None:
                    store.add_trial(name, record)
    finally:
        if store is not None:
            store.close()
    import pandas as pd

    frame = pd.DataFrame({
        "run": [name or ""] * len(records),
        "trial_id": [r.trial_id for r in records],
        "status": [r.status for r in records],
        **{m: [r.metrics.get(m, np.nan) for r in records] for m in ("test_accuracy", "test_loss", "val_accuracy")},
    })
    return denoising_table(frame)
