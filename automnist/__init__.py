"""automnist: AutoML searches for Keras image classifiers.

Declarative YAML search spaces, Keras Tuner and scikit-learn searches, a SQLite results
store, comparison tables, plots and self-contained HTML reports.

The public API is listed in ``__all__``; heavy modules (TensorFlow, seaborn) load only
when a name that needs them is first used, so ``import automnist`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # spec
    "SearchSpec": "automnist.spec",
    "load_spec": "automnist.spec",
    "parse_spec": "automnist.spec",
    # errors
    "AutomnistError": "automnist.errors",
    "SpecError": "automnist.errors",
    "DataError": "automnist.errors",
    "InfeasibleConfig": "automnist.errors",
    "StoreError": "automnist.errors",
    # building and running
    "build_model": "automnist.builders",
    "TrialRecord": "automnist.records",
    "run_trial": "automnist.runner",
    "run_search": "automnist.search",
    "SearchResult": "automnist.runs",
    # data and results
    "load_dataset": "automnist.data",
    "available_datasets": "automnist.data",
    "Store": "automnist.store",
    "write_report": "automnist.report",
    "export_table": "automnist.report",
    "export_markdown": "automnist.report",
    "Results": "automnist.notebook",
    # scikit-learn
    "KerasCNNClassifier": "automnist.sklearn_api",
    "AutoCNNClassifier": "automnist.sklearn_api",
    "cross_validate_spec": "automnist.experiments.cv",
    "DenoisingAutoencoder": "automnist.autoencoder",
    # experiments
    "lr_find": "automnist.experiments.lr_find",
    "compare_denoising": "automnist.experiments.denoise",
    "sweep_table": "automnist.aggregate",
    "Dataset": "automnist.data",
    "register_dataset": "automnist.data",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'automnist' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
