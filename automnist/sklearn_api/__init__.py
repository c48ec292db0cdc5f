"""scikit-learn estimators: the fronts of automnist that scikit-learn code calls.

* :mod:`~automnist.sklearn_api.classifier` -- :class:`KerasCNNClassifier`, one Keras
  CNN/MLP with the scikit-learn API (on scikeras), and :func:`estimator_params`;
* :mod:`~automnist.sklearn_api.auto` -- :class:`AutoCNNClassifier`, whose ``fit`` runs a
  whole search (:func:`automnist.search.run_search`) and refits the best configuration;
* :mod:`~automnist.sklearn_api.inputs` -- input validation, input shapes and scikeras'
  feature/target encoders;
* :mod:`~automnist.sklearn_api.tags` -- the scikeras tags shim for scikit-learn >= 1.6.

(Importing this package imports scikeras and so TensorFlow; ``import automnist`` does not:
its names load on first use.)
"""

from __future__ import annotations

from automnist.sklearn_api.auto import AutoCNNClassifier
from automnist.sklearn_api.classifier import HYPERPARAMETERS, KerasCNNClassifier, estimator_params

__all__ = ["AutoCNNClassifier", "HYPERPARAMETERS", "KerasCNNClassifier", "estimator_params"]
