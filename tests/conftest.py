"""Shared fixtures: tiny real data (scikit-learn digits), a temporary results root."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from pg_server import pg_url, postgres_server  # noqa: E402,F401  (a real PostgreSQL server: tests/pg_server.py)
from polish_runs import polish_runs  # noqa: E402,F401  (two real runs for the issue-13 tests: tests/polish_runs.py)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits as (x_train, y_train, x_test, y_test), 8x8x1 in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)
    return xtr, ytr.astype("int64"), xte, yte.astype("int64")


@pytest.fixture(scope="session")
def small_data(digits_arrays):
    """400 training and 120 test digits as runner.TrialData (fast trials)."""
    from automnist.runner import TrialData

    xtr, ytr, xte, yte = digits_arrays
    return TrialData(xtr[:400], ytr[:400], xte[:120], yte[:120], 10)


@pytest.fixture()
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
