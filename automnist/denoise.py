"""Denoising autoencoders in front of a classifier (seed 000, questions 2 and 3).

* :class:`DenoisingAutoencoder` -- a scikit-learn transformer around
  :func:`automnist.builders.build_denoiser`: ``fit`` learns noisy -> clean, ``transform``
  denoises.  It goes into a ``Pipeline`` before
  :class:`automnist.estimator.KerasCNNClassifier`.
* :func:`denoise_dataset` -- what a search with ``denoise:`` in its spec does once, right
  after loading: train the autoencoder on the training images (noisy -> clean) and apply
  it to the training and test images the classifier sees.
* :func:`compare_denoising` -- the seed's comparison: the same classifier configuration
  and seed trained and tested on clean, noisy and denoised images, as a DataFrame and,
  optionally, a stored run (strategy ``denoise-compare``, trials ``clean``, ``noisy``,
  ``denoised``) that :func:`denoising_table` reads back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from automnist.errors import AutomnistError, SpecError

if TYPE_CHECKING:
    import pandas as pd

    from automnist.data import Dataset
    from automnist.spec import DenoiseSpec, NoiseSpec, SearchSpec

__all__ = ["CONDITIONS", "DenoisingAutoencoder", "compare_denoising", "denoise_dataset", "denoising_table"]

#: The rows of :func:`compare_denoising`, in order.
CONDITIONS = ("clean", "noisy", "denoised")
#: ``strategy`` of the runs :func:`compare_denoising` stores.
COMPARE_STRATEGY = "denoise-compare"


class DenoisingAutoencoder(TransformerMixin, BaseEstimator):
    """A convolutional denoising autoencoder as a scikit-learn transformer.

    Parameters
    ----------
    filters : tuple of int, default (32, 32)
        Encoder ``Conv2D`` filters, one ``MaxPooling2D`` per entry (image sides must be
        divisible by ``2 ** len(filters)``); the decoder mirrors it.
    epochs : int, default 10
    batch_size : int, default 128
    learning_rate : float, default 1e-3
        Adam's learning rate (binary cross-entropy loss, as in the Keras blog post seed
        000 follows).
    noise : {"gaussian", "salt_pepper"}, default "gaussian"
        Noise added to clean images when ``fit`` gets no ``X_clean``.
    noise_std, noise_amount : float
        Gaussian standard deviation / salt-and-pepper fraction
        (:func:`automnist.data.add_noise`).
    random_state : int, default 0
        Seeds the noise, weight initialisation and shuffling.
    verbose : int, default 0
    image_shape : tuple, optional
        ``(height, width[, channels])`` for flat ``X``.

    Attributes
    ----------
    model_ : keras.Model
    input_shape_ : tuple
        ``(height, width, channels)``.
    history_ : dict of list
        Per-epoch ``loss``.
    loss_ : float
        Final training loss.

    Examples
    --------
    >>> pipe = Pipeline([("denoise", DenoisingAutoencoder(epochs=5)),        # doctest: +SKIP
    ...                  ("cnn", KerasCNNClassifier(epochs=5))])
    >>> pipe.fit(X_noisy, y, denoise__X_clean=X_clean).score(X_noisy_test, y_test)
    """

    def __init__(
        self,
        filters: Sequence[int] = (32, 32),
        epochs: int = 10,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        noise: str = "gaussian",
        noise_std: float = 0.5,
        noise_amount: float = 0.1,
        random_state: int = 0,
        verbose: int = 0,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        self.filters = filters
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.noise = noise
        self.noise_std = noise_std
        self.noise_amount = noise_amount
        self.random_state = random_state
        self.verbose = verbose
        self.image_shape = image_shape

    # -- helpers
    def _check_params(self) -> None:
        from automnist.data import NOISE_KINDS

        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"DenoisingAutoencoder: parameter {name}: {rule}, got {getattr(self, name)!r}")

        f = self.filters
        if not isinstance(f, (list, tuple)) or not f or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in f):
            raise bad("filters", "must be a non-empty list of integers >= 1")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise bad(name, "must be an integer >= 1")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise bad("learning_rate", "must be a number > 0")
        if self.noise not in NOISE_KINDS:
            raise bad("noise", f"must be one of {', '.join(NOISE_KINDS)}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, (int, np.integer)):
            raise bad("random_state", "must be an integer")

    def _images(self, X: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        """``X`` as float32 (n, h, w, c) images, and its original shape."""
        X = np.asarray(X, dtype=np.float32)
        shape = X.shape
        if X.ndim == 4:
            return X, shape
        if X.ndim == 3:
            return X[..., None], shape
        if X.ndim == 2:
            if self.image_shape is None:
                side = int(round(np.sqrt(X.shape[1])))
                if side * side != X.shape[1]:
                    raise ValueError(
                        f"DenoisingAutoencoder: X is flat with {X.shape[1]} features; pass image_shape=(height, width[, channels])"
                    )
                img = (side, side, 1)
            else:
                img = tuple(int(s) for s in self.image_shape)
                img = img + (1,) if len(img) == 2 else img
            if int(np.prod(img)) != X.shape[1]:
                raise ValueError(f"DenoisingAutoencoder: image_shape {img} does not hold {X.shape[1]} values")
            return X.reshape((X.shape[0], *img)), shape
        raise ValueError(f"DenoisingAutoencoder: X must be (n, h, w[, c]) images or flat (n, features), got shape {shape}")

    # -- API
    def fit(self, X: Any, y: Any = None, X_clean: Any = None) -> DenoisingAutoencoder:
        """Learn to map noisy images to clean ones.

        Parameters
        ----------
        X : array-like
            Noisy images when ``X_clean`` is given; otherwise clean images, to which
            noise of kind ``noise`` is added (seeded by ``random_state``).
        y : ignored
        X_clean : array-like, optional
            The clean version of ``X`` (same shape).

        Returns
        -------
        self
        """
        import keras

        from automnist.builders import build_denoiser
        from automnist.data import add_noise

        self._check_params()
        x, _ = self._images(X)
        if X_clean is None:
            clean = x
            noisy = add_noise(x, kind=self.noise, std=self.noise_std, amount=self.noise_amount,
                              seed=int(self.random_state))
        else:
            clean, _ = self._images(X_clean)
            if clean.shape != x.shape:
                raise ValueError(f"DenoisingAutoencoder: X_clean has shape {clean.shape}, X has {x.shape}")
            noisy = x
        keras.utils.set_random_seed(int(self.random_state))
        self.input_shape_ = tuple(int(s) for s in x.shape[1:])
        self.model_ = build_denoiser(self.input_shape_, tuple(int(f) for f in self.filters), float(self.learning_rate))
        hist = self.model_.fit(noisy, clean, epochs=int(self.epochs), batch_size=int(self.batch_size), shuffle=True,
                               verbose=self.verbose)
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.loss_ = self.history_["loss"][-1]
        self.n_features_in_ = int(np.prod(self.input_shape_))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Denoised images, in the shape ``X`` came in."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        x, shape = self._images(X)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise ValueError(f"DenoisingAutoencoder: fitted on images {self.input_shape_}, got {tuple(x.shape[1:])}")
        out = np.asarray(self.model_.predict(x, batch_size=512, verbose=0), dtype=np.float32)
        return out.reshape(shape)


def _autoencoder(cfg: DenoiseSpec, noise: NoiseSpec, seed: int) -> DenoisingAutoencoder:
    return DenoisingAutoencoder(filters=tuple(cfg.filters), epochs=cfg.epochs, batch_size=cfg.batch_size,
                                learning_rate=cfg.learning_rate, noise=noise.kind, noise_std=noise.std,
                                noise_amount=noise.amount, random_state=seed)


def denoise_dataset(dataset: Dataset, clean_train: np.ndarray, cfg: DenoiseSpec, noise: NoiseSpec,
                    seed: int = 0) -> tuple[Dataset, DenoisingAutoencoder]:
    """Train a denoising autoencoder and apply it to a data set's images.

    Parameters
    ----------
    dataset : Dataset
        The images the classifier would see (noisy where ``noise.on`` says).
    clean_train : ndarray
        The clean training images (same order as ``dataset.x_train``).
    cfg : DenoiseSpec
        Autoencoder settings.
    noise : NoiseSpec
        The noise: the autoencoder trains on ``add_noise(clean_train)`` with this kind,
        level and seed (the very images the classifier gets when noise is on ``train``).
        The test images are never used for training.
    seed : int
        Weight initialisation and shuffling.

    Returns
    -------
    (Dataset, DenoisingAutoencoder)
        The denoised data set (its ``source`` says so) and the fitted autoencoder.
    """
    from automnist.data import add_noise

    noisy_train = add_noise(clean_train, kind=noise.kind, std=noise.std, amount=noise.amount, seed=noise.seed)
    ae = _autoencoder(cfg, noise, seed).fit(noisy_train, X_clean=clean_train)
    ds = dataclasses.replace(
        dataset,
        x_train=ae.transform(dataset.x_train),
        x_test=ae.transform(dataset.x_test),
        source=f"{dataset.source}; denoised by a convolutional autoencoder (filters "
               f"{'-'.join(map(str, cfg.filters))}, {cfg.epochs} epochs, final loss {ae.loss_:.4f})",
    )
    return ds, ae


def _noisy(clean: Dataset, noise: NoiseSpec) -> Dataset:
    from automnist.data import add_noise

    changes = {}
    if "train" in noise.on:
        changes["x_train"] = add_noise(clean.x_train, kind=noise.kind, std=noise.std, amount=noise.amount,
                                       seed=noise.seed)
    if "test" in noise.on:
        changes["x_test"] = add_noise(clean.x_test, kind=noise.kind, std=noise.std, amount=noise.amount,
                                      seed=noise.seed + 1)
    return dataclasses.replace(clean, source=f"{clean.source}; {noise.kind} noise on {'+'.join(noise.on)}", **changes)


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
    from automnist.data import load_dataset
    from automnist.records import TrialRecord
    from automnist.runner import TrialData, run_trial
    from automnist.spec import LR_FROM_LR_FIND, DenoiseSpec

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
    store = name = None
    if results_dir is not None:  # the run exists before training: a clash fails now, trials commit as they end
        from automnist.search import create_spec_run
        from automnist.store import Store

        store = Store.at(results_dir)
        name = run_name or f"{spec.name}-denoise-{time.strftime('%Y%m%d-%H%M%S')}"
        note = {"conditions": list(CONDITIONS), "denoise": dataclasses.asdict(cfg), "noise": dataclasses.asdict(noise),
                "epochs": epochs}
        note["denoise"]["filters"] = list(cfg.filters)
        note["noise"]["on"] = list(noise.on)
        try:
            create_spec_run(store, name, spec, strategy=COMPARE_STRATEGY, seed=seed, extra_config={"denoise_compare": note})
        except BaseException:
            store.close()
            raise
    records: list[TrialRecord] = []
    try:
        with store.recording(name) if store is not None else contextlib.nullcontext():
            clean = dataset if dataset is not None else load_dataset(
                d.dataset, data_dir=data_dir or d.data_dir, subset=d.subset, seed=d.split_seed,
                test_split=d.test_split, image_size=d.image_size)
            noisy = _noisy(clean, noise)
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


def denoising_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Clean / noisy / denoised accuracy from the trials of a ``denoise-compare`` run.

    Parameters
    ----------
    trials : DataFrame
        ``Store.trials_frame(run)`` of a run written by :func:`compare_denoising` (or any
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
    import pandas as pd

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
