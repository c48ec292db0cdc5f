"""A convolutional denoising autoencoder (seed 000, questions 2 and 3).

* :class:`DenoisingAutoencoder` -- a scikit-learn transformer around
  :func:`automnist.builders.build_denoiser`: ``fit`` learns noisy -> clean, ``transform``
  denoises.  It goes into a ``Pipeline`` before :class:`automnist.KerasCNNClassifier`.
* :func:`denoise_dataset` -- what a run with ``denoise:`` in its spec does once, right
  after loading: train the autoencoder on the training images (noisy -> clean) and apply
  it to the training and test images the classifier sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from automnist.builders import build_denoiser
from automnist.data import NOISE_KINDS, Dataset, add_noise
from automnist.spec import DenoiseSpec, NoiseSpec

__all__ = ["DenoisingAutoencoder", "denoise_dataset"]


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
