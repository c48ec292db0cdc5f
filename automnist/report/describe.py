"""Stage 1 of the report, describe: gather the numbers of each run.

A run's stored info gives its kind (search, sweep, lr_find, denoise) and objective; the
store gives its trials, folds and history; ``<results_dir>/<run>/predictions.npz`` the
best model's test-set predictions; :mod:`automnist.aggregate` computes the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from automnist.aggregate import (
    compare_best,
    denoising_table,
    effects,
    effects_by_run,
    failures,
    leaderboard,
    lr_find_curves,
    param_significance,
    pivot,
    run_summary,
    sweep_table,
    sweep_values,
    varying_params,
)
from automnist.aggregate.denoise import COMPARE_STRATEGY
from automnist.errors import AutomnistError
from automnist.records import objective_direction
from automnist.runs import run_dir

if TYPE_CHECKING:
    from automnist.store import Store

__all__ = ["Description", "RunView", "best_row", "config_of", "describe", "ensure_columns", "kind_of",
           "objective_of", "run_tables"]

#: Strategies whose 2-hyperparameter searches get a pivot heatmap.
GRID_STRATEGIES = ("grid", "sklearn-grid")
_PREDICTION_KEYS = ("y_true", "y_prob", "class_names", "mis_images", "mis_true", "mis_pred",
                    "sample_images", "sample_labels", "trial_id")
_FRAME_COLUMNS = ("run", "trial_id", "number", "status", "error", "n_folds", "duration_s", "n_params",
                  "test_accuracy")


@dataclass
class RunView:
    """Everything the report shows about one run."""

    name: str
    info: dict[str, Any]
    objective: str
    direction: str
    trials: pd.DataFrame
    folds: pd.DataFrame
    history: pd.DataFrame
    predictions: dict[str, np.ndarray] | None = None
    predictions_note: str = ""
    tables: dict[str, Any] = field(default_factory=dict)
    grid: tuple[str, str] | None = None
    kind: str = "search"  # search | sweep | lr_find | denoise (see kind_of)
    notes: dict[str, str] = field(default_factory=dict)  # why a kind-specific table is missing


@dataclass
class Description:
    """Every run of one report, and the comparison tables when there are several."""

    runs: list[RunView]
    runs_frame: pd.DataFrame
    trials: pd.DataFrame
    objective: str
    direction: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def objective_of(info: dict[str, Any]) -> tuple[str, str]:
    """The run's objective and direction from its stored spec config (``spec.to_dict()``).

    ``val_accuracy`` when the config names none; the direction is the stored one, else
    :func:`automnist.records.objective_direction` of the name.
    """
    config = info.get("config") or {}
    obj = config.get("objective") if isinstance(config, dict) else None
    if isinstance(obj, str):
        obj = {"name": obj}
    name = str((obj or {}).get("name") or "val_accuracy")
    direction = (obj or {}).get("direction")
    try:
        return name, objective_direction(name, str(direction) if direction else None)
    except ValueError:  # an unknown direction stored by hand: report it as maximised
        return name, "max"


def kind_of(info: dict[str, Any]) -> str:
    """Which report a run gets: ``sweep`` (one-factor sweeps), ``lr_find`` (range tests),
    ``denoise`` (clean / noisy / denoised comparison) or ``search`` (everything else)."""
    strategy = str(info.get("strategy") or "")
    if info.get("kind") == "lr_find" or strategy == "lr_find":
        return "lr_find"
    if strategy == "sweep":
        return "sweep"
    if strategy == COMPARE_STRATEGY:
        return "denoise"
    return "search"


def ensure_columns(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Give an empty or sparse trials frame the columns the tables need."""
    missing = [c for c in (*_FRAME_COLUMNS, objective) if c not in frame.columns]
    if not missing:
        return frame
    frame = frame.copy()
    for column in missing:
        frame[column] = 0 if column in ("number", "n_folds") else np.nan
    return frame


def _select(frame: pd.DataFrame, run: str) -> pd.DataFrame:
    if frame is None or frame.empty or "run" not in frame.columns:
        return pd.DataFrame(columns=["run", "trial_id"])
    return frame[frame["run"] == run].reset_index(drop=True)


def _load_predictions(results_dir: Path, run: str) -> tuple[dict[str, np.ndarray] | None, str]:
    """Read ``<results_dir>/<run>/predictions.npz``; (None, reason) when absent or unreadable."""
    candidates = [run_dir(results_dir, run) / "predictions.npz"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None, f"no {candidates[0]} (the best model's test-set predictions were not saved)"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _PREDICTION_KEYS if k not in npz.files]
            if missing:
                return None, f"{path} lacks keys {', '.join(missing)}"
            data = {k: np.asarray(npz[k]) for k in _PREDICTION_KEYS}
    except (OSError, ValueError) as exc:
        return None, f"cannot read {path}: {exc}"
    y_prob = data["y_prob"]
    if y_prob.ndim != 2 or len(y_prob) != len(data["y_true"]) or len(data["class_names"]) != y_prob.shape[1]:
        return None, (f"{path}: inconsistent shapes y_true {data['y_true'].shape}, y_prob {y_prob.shape}, "
                      f"class_names {data['class_names'].shape}")
    return data, ""


def describe(store: Store, runs: Sequence[str], results_dir: Path) -> Description:
    """Read the runs' frames and predictions from ``store`` and compute their tables."""
    infos = [store.require_run(run) for run in runs]
    all_runs = store.runs_frame()
    runs_frame = all_runs[all_runs["run"].isin(runs)].set_index("run").reindex(list(runs)).reset_index()
    trials_all = store.trials_frame(list(runs))
    folds_all = store.folds_frame(list(runs))
    history_all = store.history_frame(list(runs))
    views = []
    for run, info in zip(runs, infos):
        objective, direction = objective_of(info)
        view = RunView(
            name=run, info=info, objective=objective, direction=direction,
            trials=ensure_columns(_select(trials_all, run), objective),
            folds=_select(folds_all, run), history=_select(history_all, run),
        )
        view.kind = kind_of(info)
        if view.kind != "lr_find":
            view.predictions, view.predictions_note = _load_predictions(results_dir, run)
        run_tables(view)
        _kind_tables(view, store)
        views.append(view)
    objective, direction = views[0].objective, views[0].direction
    trials = ensure_columns(trials_all if not trials_all.empty else pd.DataFrame(columns=["run"]), objective)
    desc = Description(views, runs_frame, trials, objective, direction)
    if len(views) > 1:
        desc.tables["summary"] = run_summary(runs_frame, trials, objective, direction)
        desc.tables["effects_by_run"] = effects_by_run(trials, objective, direction)
        desc.tables["leaderboard"] = leaderboard(trials, objective, direction)
    return desc


def run_tables(view: RunView) -> None:
    """Fill ``view.tables`` with the search tables: leaderboard, effects, significance, ..."""
    t, obj, d = view.trials, view.objective, view.direction
    view.tables = {
        "leaderboard": leaderboard(t, obj, d),
        "effects": effects(t, obj, d),
        "significance": param_significance(t, obj),
        "compare_best": compare_best(t, view.folds, obj, d),
        "failures": failures(t),
        "varying": varying_params(t, obj),
    }
    strategy = str(view.info.get("strategy") or "")
    varying = view.tables["varying"]
    if strategy in GRID_STRATEGIES and len(varying) == 2:
        view.grid = (varying[0], varying[1])
        view.tables["pivot"] = pivot(t, varying[0], varying[1], obj)


def config_of(info: dict[str, Any]) -> dict[str, Any]:
    """The run's stored spec config (``{}`` when there is none)."""
    config = info.get("config")
    return config if isinstance(config, dict) else {}


def _kind_tables(view: RunView, store: Store) -> None:
    """The tables of a sweep, range-test or denoising run (their own report sections).

    A table that cannot be computed (say, a run stored by an older automnist whose config
    no longer parses) is left out with the reason in ``view.notes``: the rest of the
    report is still written.
    """
    config = config_of(view.info)
    try:
        if view.kind == "sweep":
            view.tables["sweep"] = sweep_table(view.trials, config)
            view.tables["sweep_values"] = sweep_values(view.trials, config)
        elif view.kind == "lr_find":
            view.tables["lr_curves"] = lr_find_curves(view.history, view.trials)
            view.tables["lr_suggestions"] = _lr_suggestions(view.trials)
        elif view.kind == "denoise":
            view.tables["denoise"] = denoising_table(view.trials)
    except (AutomnistError, KeyError, ValueError, TypeError) as exc:
        view.notes[view.kind] = f"{type(exc).__name__}: {exc}"
    lr_note = config.get("lr_find") if view.kind != "lr_find" else None
    if isinstance(lr_note, dict) and isinstance(lr_note.get("runs"), dict):
        view.tables["lr_used"] = _lr_used(lr_note)
        view.tables["lr_used_curves"] = _lr_used_curves(store, lr_note["runs"])


#: Columns of the range-test table, in order (metrics an lr_find trial records).
_LR_COLUMNS = ("suggested_lr", "min_loss", "min_loss_lr", "last_lr", "diverged", "batches", "batch_size")


def _lr_suggestions(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per optimizer of an lr_find run: the suggestion and where the curve ended."""
    table = pd.DataFrame({"optimizer": trials["trial_id"].astype(str), "status": trials["status"]})
    for column in _LR_COLUMNS:
        table[column] = pd.to_numeric(trials[column], errors="coerce") if column in trials else np.nan
    table["diverged"] = table["diverged"].map({1.0: "yes", 0.0: "no"})
    table["error"] = trials["error"].fillna("") if "error" in trials else ""
    return table


def _lr_used(note: dict[str, Any]) -> pd.DataFrame:
    """Which learning rate each optimizer of a ``from_lr_find`` run got, and from which test."""
    lrs = note.get("learning_rate")
    runs = note["runs"]
    tested_now = set(note.get("tested_now") or ())
    rows = []
    for optimizer, run in runs.items():
        lr = lrs.get(optimizer) if isinstance(lrs, dict) else lrs
        rows.append({"optimizer": optimizer, "learning_rate": lr, "lr_find run": run,
                     "tested for this run": optimizer in tested_now})
    return pd.DataFrame(rows, columns=["optimizer", "learning_rate", "lr_find run", "tested for this run"])


def _lr_used_curves(store: Store, runs: dict[str, str]) -> pd.DataFrame:
    """The range-test curves behind a ``from_lr_find`` run (the runs that still exist)."""
    names = [r for r in dict.fromkeys(runs.values()) if store.get_run(r) is not None]
    if not names:
        return pd.DataFrame()
    curves = lr_find_curves(store.history_frame(names), store.trials_frame(names))
    wanted = set(runs.items())
    keep = [(o, r) in wanted for o, r in zip(curves["optimizer"], curves["run"])]
    return curves[keep].reset_index(drop=True)


def best_row(view: RunView) -> pd.Series | None:
    """The leaderboard's first row with an objective value (None without ok trials)."""
    board = view.tables["leaderboard"]
    board = board[board[view.objective].notna()]
    return board.iloc[0] if len(board) else None
