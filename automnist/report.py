"""One self-contained HTML report per run (or per comparison of runs), plus text exports.

The report is a pipeline of three stages, like ydata-profiling:

1. **describe** (:func:`_describe`): read the store's frames and the run's
   ``predictions.npz``, compute the :mod:`automnist.aggregate` tables;
2. **structure** (:func:`_structure`): turn them into a list of sections made of
   blocks (tables, figures, key-value lists, preformatted text); figures are drawn by
   :mod:`automnist.plots` and inlined as base64 PNG data URIs;
3. **render** (:func:`_render`): the Jinja2 template ``templates/report.html.j2`` with
   autoescaping on, so every run name, spec value, class name and error text is
   escaped.  CSS and the table sorter are inline; a Content-Security-Policy allows
   no external request and only the sorter script (by its SHA-256 hash).
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from automnist import aggregate
from automnist.spec import value_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from automnist.store import Store

__all__ = ["export_markdown", "export_table", "write_report"]

#: Learning curves are drawn for this many best trials.
TOP_CURVES = 5
#: At most this many effect plots per run (the effect *table* lists every hyperparameter).
MAX_EFFECT_PLOTS = 12
#: Parallel coordinates draw at most this many trials (best quarter + a sample).
MAX_PARALLEL_LINES = 300
#: Strategies whose 2-hyperparameter searches get a pivot heatmap.
GRID_STRATEGIES = ("grid", "sklearn-grid")
_PNG_DPI = 80
_PREDICTION_KEYS = ("y_true", "y_prob", "class_names", "mis_images", "mis_true", "mis_pred",
                    "sample_images", "sample_labels", "trial_id")
_FRAME_COLUMNS = ("run", "trial_id", "number", "status", "error", "n_folds", "duration_s", "n_params",
                  "test_accuracy")


# =========================================================================== describe


@dataclass
class _RunView:
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
    kind: str = "search"  # search | sweep | lr_find | denoise (see _kind_of)
    notes: dict[str, str] = field(default_factory=dict)  # why a kind-specific table is missing


@dataclass
class _Description:
    runs: list[_RunView]
    runs_frame: pd.DataFrame
    trials: pd.DataFrame
    objective: str
    direction: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _objective_of(info: dict[str, Any]) -> tuple[str, str]:
    """The run's objective from its stored spec config (``spec.to_dict()``)."""
    config = info.get("config") or {}
    obj = config.get("objective") if isinstance(config, dict) else None
    if isinstance(obj, str):
        obj = {"name": obj}
    name = str((obj or {}).get("name") or "val_accuracy")
    direction = str((obj or {}).get("direction") or ("min" if name.endswith("loss") else "max"))
    return name, direction if direction in aggregate.DIRECTIONS else "max"


def _kind_of(info: dict[str, Any]) -> str:
    """Which report a run gets: ``sweep`` (one-factor sweeps), ``lr_find`` (range tests),
    ``denoise`` (clean / noisy / denoised comparison) or ``search`` (everything else)."""
    from automnist.experiments.denoise import COMPARE_STRATEGY

    strategy = str(info.get("strategy") or "")
    if info.get("kind") == "lr_find" or strategy == "lr_find":
        return "lr_find"
    if strategy == "sweep":
        return "sweep"
    if strategy == COMPARE_STRATEGY:
        return "denoise"
    return "search"


def _ensure_columns(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
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
    from automnist.runs import run_dir

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


def _describe(store: Store, runs: Sequence[str], results_dir: Path) -> _Description:
    infos = [store.require_run(run) for run in runs]
    all_runs = store.runs_frame()
    runs_frame = all_runs[all_runs["run"].isin(runs)].set_index("run").reindex(list(runs)).reset_index()
    trials_all = store.trials_frame(list(runs))
    folds_all = store.folds_frame(list(runs))
    history_all = store.history_frame(list(runs))
    views = []
    for run, info in zip(runs, infos):
        objective, direction = _objective_of(info)
        view = _RunView(
            name=run, info=info, objective=objective, direction=direction,
            trials=_ensure_columns(_select(trials_all, run), objective),
            folds=_select(folds_all, run), history=_select(history_all, run),
        )
        view.kind = _kind_of(info)
        if view.kind != "lr_find":
            view.predictions, view.predictions_note = _load_predictions(results_dir, run)
        _run_tables(view)
        _kind_tables(view, store)
        views.append(view)
    objective, direction = views[0].objective, views[0].direction
    trials = _ensure_columns(trials_all if not trials_all.empty else pd.DataFrame(columns=["run"]), objective)
    desc = _Description(views, runs_frame, trials, objective, direction)
    if len(views) > 1:
        desc.tables["summary"] = aggregate.run_summary(runs_frame, trials, objective, direction)
        desc.tables["effects_by_run"] = aggregate.effects_by_run(trials, objective, direction)
        desc.tables["leaderboard"] = aggregate.leaderboard(trials, objective, direction)
    return desc


def _run_tables(view: _RunView) -> None:
    t, obj, d = view.trials, view.objective, view.direction
    view.tables = {
        "leaderboard": aggregate.leaderboard(t, obj, d),
        "effects": aggregate.effects(t, obj, d),
        "significance": aggregate.param_significance(t, obj),
        "compare_best": aggregate.compare_best(t, view.folds, obj, d),
        "failures": aggregate.failures(t),
        "varying": aggregate.varying_params(t, obj),
    }
    strategy = str(view.info.get("strategy") or "")
    varying = view.tables["varying"]
    if strategy in GRID_STRATEGIES and len(varying) == 2:
        view.grid = (varying[0], varying[1])
        view.tables["pivot"] = aggregate.pivot(t, varying[0], varying[1], obj)


def _config(info: dict[str, Any]) -> dict[str, Any]:
    config = info.get("config")
    return config if isinstance(config, dict) else {}


def _kind_tables(view: _RunView, store: Store) -> None:
    """The tables of a sweep, range-test or denoising run (their own report sections).

    A table that cannot be computed (say, a run stored by an older automnist whose config
    no longer parses) is left out with the reason in ``view.notes``: the rest of the
    report is still written.
    """
    from automnist.errors import AutomnistError

    config = _config(view.info)
    try:
        if view.kind == "sweep":
            from automnist.strategies.sweep import sweep_table, sweep_values

            view.tables["sweep"] = sweep_table(view.trials, config)
            view.tables["sweep_values"] = sweep_values(view.trials, config)
        elif view.kind == "lr_find":
            from automnist.experiments.lr_find import lr_find_curves

            view.tables["lr_curves"] = lr_find_curves(view.history, view.trials)
            view.tables["lr_suggestions"] = _lr_suggestions(view.trials)
        elif view.kind == "denoise":
            from automnist.experiments.denoise import denoising_table

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
    from automnist.experiments.lr_find import lr_find_curves

    names = [r for r in dict.fromkeys(runs.values()) if store.get_run(r) is not None]
    if not names:
        return pd.DataFrame()
    curves = lr_find_curves(store.history_frame(names), store.trials_frame(names))
    wanted = set(runs.items())
    keep = [(o, r) in wanted for o, r in zip(curves["optimizer"], curves["run"])]
    return curves[keep].reset_index(drop=True)


# =========================================================================== structure


@dataclass
class _Block:
    kind: str  # table | figure | gallery | kv | pre | text
    title: str = ""
    data: Any = None
    note: str = ""


@dataclass
class _Section:
    id: str
    title: str
    level: int = 2
    blocks: list[_Block] = field(default_factory=list)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _cell(value: Any) -> tuple[str, str | None]:
    """Display text and numeric sort key (None: sort as text; "": missing, always last)."""
    if _is_missing(value):
        return "–", ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)), None
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value)), str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return ("∞" if v > 0 else "-∞"), ("1e308" if v > 0 else "-1e308")
        text = f"{v:,.0f}" if abs(v) >= 10000 else f"{v:.4g}"
        return text, repr(v)
    return str(value), None


def _table(frame: pd.DataFrame, title: str = "", note: str = "", index: bool = False) -> _Block:
    """A sortable table block: header texts and rows of (text, sort key) cells."""
    if index:
        frame = frame.reset_index()
    columns = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return _Block("table", title, {"columns": columns, "rows": rows}, note)


def _png(fig: Figure) -> str:
    """Encode a figure as a base64 PNG data URI and free it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_PNG_DPI)
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(fig: Figure, title: str, alt: str, note: str = "") -> _Block:
    return _Block("figure", title, {"src": _png(fig), "alt": alt}, note)


def _kv(items: Sequence[tuple[str, Any]], title: str = "") -> _Block:
    return _Block("kv", title, [(k, _cell(v)[0] if not isinstance(v, str) else v) for k, v in items])


def _when(ts: Any) -> str:
    if _is_missing(ts) or not ts:
        return "–"
    return _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: Any) -> str:
    if _is_missing(seconds):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"


def _slug(*parts: Any) -> str:
    text = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-") or "section"


def _best_row(view: _RunView) -> pd.Series | None:
    board = view.tables["leaderboard"]
    board = board[board[view.objective].notna()]
    return board.iloc[0] if len(board) else None


def _summary_section(view: _RunView, sid: str, level: int) -> _Section:
    info, t, obj = view.info, view.trials, view.objective
    config = _config(info)
    search = config.get("search") if isinstance(config.get("search"), dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    counts = t["status"].value_counts()
    budget = ", ".join(f"{k}={v}" for k, v in search.items()
                       if k in ("max_trials", "epochs", "time_budget", "cv", "n_iter", "factor", "repeats")
                       and v is not None)
    best = _best_row(view)
    started, ended = info.get("started_at"), info.get("ended_at")
    wall = float(ended) - float(started) if ended and started and not _is_missing(ended) else float("nan")
    items: list[tuple[str, Any]] = [
        ("Run", view.name),
        ("Kind / status", f"{info.get('kind', '')} / {info.get('status', '')}"),
        ("Data set", str(info.get("dataset") or data.get("dataset") or "–")
         + (f" (subset {data['subset']})" if data.get("subset") else "")),
        ("Strategy", str(info.get("strategy") or search.get("strategy") or "–")),
        ("Objective", "none: a suggested learning rate per optimizer" if view.kind == "lr_find"
         else f"{obj} ({'higher' if view.direction == 'max' else 'lower'} is better)"),
        ("Budget", budget or "–"),
        ("Seed", str(info.get("seed", "–"))),
        ("Spec", f"{info.get('spec_name', '')} (hash {info.get('spec_hash', '') or '–'})"),
        ("Started / ended", f"{_when(started)} / {_when(ended)}"),
        ("Wall time", _duration(wall)),
        ("Sum of trial durations", _duration(pd.to_numeric(t["duration_s"], errors="coerce").sum())),
        ("Trials", f"{len(t)} (ok {int(counts.get('ok', 0))}, failed {int(counts.get('failed', 0))}, "
                   f"infeasible {int(counts.get('infeasible', 0))})"),
    ]
    if best is not None:
        std = best.get(f"{obj}_std")
        score = _cell(best[obj])[0] + ("" if _is_missing(std) else f" ± {_cell(std)[0]} over {int(best['n_folds'])} folds")
        items += [("Best trial", str(best["trial_id"])), (f"Best {obj}", score),
                  ("Best trial's test accuracy", best["test_accuracy"])]
    blocks = [_kv(items)]
    if best is not None:
        config_rows = [(aggregate.param_name(c), value_label(best[c]))
                       for c in aggregate.param_columns(view.tables["leaderboard"]) if not _is_missing(best[c])]
        blocks.append(_table(pd.DataFrame(config_rows, columns=["hyperparameter", "value"]), "Best configuration"))
    versions = info.get("versions") if isinstance(info.get("versions"), dict) else {}
    if versions:
        blocks.append(_table(pd.DataFrame(sorted(versions.items()), columns=["library", "version"]),
                             "Library versions"))
    blocks.append(_Block("pre", "Search spec", str(info.get("spec_text") or "(no spec text stored)")))
    return _Section(sid, "Summary" if level == 2 else f"Summary of {view.name}", level, blocks)


def _run_sections(view: _RunView, level: int, prefix: str) -> list[_Section]:
    from automnist import plots

    t, obj, d, tables = view.trials, view.objective, view.direction, view.tables
    n_ok = int((t["status"] == "ok").sum()) if len(t) else 0
    sections = [_summary_section(view, _slug(prefix, "summary"), level)]
    if view.kind == "lr_find":  # no objective, models or test set: the curves are the result
        sections.append(_lr_find_section(view, _slug(prefix, "lr-find"), level))
        sections.append(_failures_section(view, _slug(prefix, "failures"), level))
        return sections
    if view.kind == "sweep":
        sections.append(_sweep_section(view, _slug(prefix, "sweep"), level))
    if view.kind == "denoise":
        sections.append(_denoise_section(view, _slug(prefix, "denoise"), level))
    if "lr_used" in tables:
        sections.append(_lr_used_section(view, _slug(prefix, "lr-used"), level))

    board = tables["leaderboard"]
    lb = _Section(_slug(prefix, "leaderboard"), "Leaderboard", level)
    if n_ok:
        lb.blocks.append(_figure(plots.plot_leaderboard(t, obj, d), "", f"top trials by {obj}"))
    lb.blocks.append(_table(board, f"{len(board)} ok trials ranked by {obj}",
                            note="Failed and infeasible trials are excluded; ties share the lower rank; "
                                 "std is over CV folds (– without CV)."))
    sections.append(lb)

    if view.kind == "search":
        sections.extend(_effect_sections(view, level, prefix))
    sections.append(_failures_section(view, _slug(prefix, "failures"), level))

    if n_ok and view.kind == "search":
        par = _Section(_slug(prefix, "parallel"), "Parallel coordinates", level)
        note = (f"{MAX_PARALLEL_LINES} of {n_ok} ok trials drawn: the best quarter and a random sample."
                if n_ok > MAX_PARALLEL_LINES else "")
        par.blocks.append(_figure(plots.plot_parallel(t, obj, d, MAX_PARALLEL_LINES), "",
                                  "parallel coordinates of the trials", note))
        sections.append(par)
    if n_ok:
        curves = _Section(_slug(prefix, "curves"), f"Learning curves of the top {TOP_CURVES} trials", level)
        curves.blocks.append(_figure(plots.plot_learning_curves(view.history, t, TOP_CURVES, obj, d), "",
                                     "learning curves", "With CV, each epoch's value is the mean over folds."))
        sections.append(curves)

        cost = _Section(_slug(prefix, "cost"), f"{obj} vs training time and size", level)
        cost.blocks.append(_figure(plots.plot_tradeoffs(t, obj, d), "", f"{obj} vs time and parameters"))
        sections.append(cost)

    sections.append(_predictions_section(view, _slug(prefix, "test"), level))
    return sections


def _effect_sections(view: _RunView, level: int, prefix: str) -> list[_Section]:
    """Effects, significance and the grid pivot of a search (a sweep has its own analysis)."""
    from automnist import plots

    t, obj, d, tables = view.trials, view.objective, view.direction, view.tables
    sections = []
    eff = _Section(_slug(prefix, "effects"), "Hyperparameter effects", level)
    varying = tables["varying"]
    if varying:
        eff.blocks.append(_table(tables["effects"], f"{obj} at each value of each searched hyperparameter",
                                 note="Constant hyperparameters are omitted; numeric ranges with more than 10 "
                                      "distinct values are grouped into 4 quantile bins."))
        figures = [{"src": _png(plots.plot_effect(t, p, obj, d)), "alt": f"{obj} by {p}", "title": ""}
                   for p in varying[:MAX_EFFECT_PLOTS]]
        note = (f"Plots for the first {MAX_EFFECT_PLOTS} of {len(varying)} hyperparameters."
                if len(varying) > MAX_EFFECT_PLOTS else "")
        eff.blocks.append(_Block("gallery", "", figures, note))
    else:
        eff.blocks.append(_Block("text", "", "No hyperparameter took more than one value among the ok trials."))
    sections.append(eff)

    sig = _Section(_slug(prefix, "significance"), "Significance", level)
    sig.blocks.append(_table(tables["compare_best"], "Is the best configuration better than the runner-up?",
                             note="Paired test on the per-fold scores of the two best trials: Wilcoxon "
                                  "signed-rank with at least 6 paired folds, else a paired t-test; without "
                                  "folds no test is made. mean_diff is best minus runner-up."))
    if len(tables["significance"]):
        sig.blocks.append(_table(tables["significance"], "Does each hyperparameter matter? (Kruskal-Wallis)",
                                 note="Groups are the values (or quantile bins) of a hyperparameter with at "
                                      "least 2 ok trials; values with fewer are left out; at least 2 groups "
                                      "are needed. n is the number of trials in the groups."))
    sections.append(sig)

    if view.grid is not None:
        row, col = view.grid
        grid = _Section(_slug(prefix, "grid"), f"Grid: {row} × {col}", level)
        grid.blocks.append(_figure(plots.plot_pivot(t, row, col, obj), "", f"mean {obj} by {row} and {col}"))
        grid.blocks.append(_table(tables["pivot"], f"mean {obj}", index=True))
        sections.append(grid)

    return sections


def _failures_section(view: _RunView, sid: str, level: int) -> _Section:
    fail = _Section(sid, "Failed and infeasible trials", level)
    failed = view.tables["failures"]
    if len(failed):
        fail.blocks.append(_table(failed, f"{len(failed)} trials did not finish"))
    else:
        fail.blocks.append(_Block("text", "", "No failed or infeasible trials."))
    return fail


def _missing(view: _RunView, what: str) -> _Block:
    return _Block("text", "", f"Cannot show {what}: {view.notes.get(view.kind, 'no data')}.")


def _sweep_section(view: _RunView, sid: str, level: int) -> _Section:
    """Seed 004's figures 3.7-3.20 and its choices, with the numbers behind them."""
    from automnist.sweep_plots import plot_sweep_curves, plot_sweep_values

    section = _Section(sid, "One-factor-at-a-time sweeps", level)
    if "sweep" not in view.tables:
        section.blocks.append(_missing(view, "the sweep analysis"))
        return section
    table, values = view.tables["sweep"], view.tables["sweep_values"]
    search = _config(view.info).get("search") or {}
    repeats = int(search.get("repeats") or 1)
    cv = search.get("cv")
    runs = f"{repeats} seed{'s' if repeats > 1 else ''} per value" + (f", {cv}-fold CV each" if cv else "")
    alpha = search.get("chain_alpha")
    if search.get("chain") and alpha:
        how = (f"Chained with chain_alpha = {alpha:g}: a hyperparameter's best value (best mean {view.objective}) "
               f"replaced its baseline value before the next hyperparameter was swept only when Welch's t-test "
               f"against the baseline value's runs gave p < {alpha:g} (column \u201cp vs baseline\u201d); otherwise "
               "the baseline value stayed (\u201ccarried\u201d False). Rows marked \u201cbaseline changed\u201d "
               "were swept around earlier winners.")
    elif search.get("chain"):
        how = ("Chained (search.chain: true): each hyperparameter's winner, the value with the best mean "
               f"{view.objective}, was carried into the baseline before the next hyperparameter was swept, "
               "as seed 004 does by hand, however small its margin (search.chain_alpha carries only significant "
               "winners). Rows marked \u201cbaseline changed\u201d were swept around earlier winners.")
    else:
        how = ("Not chained: every hyperparameter was swept around the same initial baseline "
               "(set search.chain: true to carry each winner into the next baseline).")
    section.blocks.append(_Block("text", "", f"Every value was trained with all other hyperparameters at the "
                                             f"baseline; {runs}. {how}"))
    shown = table.rename(columns={
        "param": "hyperparameter", "n_values": "values", "best_mean": f"best mean {view.objective}",
        "runner_up": "runner-up", "runner_up_mean": "runner-up mean", "p_value": "p-value",
        "baseline_mean": "baseline mean", "p_vs_baseline": "p vs baseline", "baseline_changed": "baseline changed",
    }).drop(columns=["step", "objective"] + ([] if search.get("chain") else ["carried"]))
    section.blocks.append(_table(shown, "Best value per hyperparameter", note=(
        f"margin: how much the best value beats the runner-up in {view.objective} (positive is better). "
        "p-value: Welch's t-test of the best value against the runner-up over their repeats (with one run per "
        "value but CV folds, from the fold mean and std: optimistic). n: runs (or folds) behind the best value.")))
    params = list(dict.fromkeys(values.loc[values["n"] > 0, "param"]))
    config = _config(view.info)
    if params and not view.history.empty:
        figures = [{"src": _png(plot_sweep_curves(view.history, view.trials, config, params=[p])),
                    "alt": f"validation accuracy and loss per epoch for each value of {p}", "title": ""}
                   for p in params]
        section.blocks.append(_Block("gallery", "", figures, note=(
            "One panel per hyperparameter: validation accuracy and loss per epoch for each value (mean over "
            "seeds and folds, band: \u00b11 std); the baseline value is dashed.")))
    elif params:
        section.blocks.append(_Block("text", "", "No per-epoch history was recorded for this sweep."))
    if params:
        section.blocks.append(_figure(plot_sweep_values(values, objective=view.objective), "",
                                      f"final {view.objective} per value", "Bars: mean over runs; whiskers: "
                                      "min to max; orange: the baseline value."))
    shown_values = values.drop(columns=["step", "trial_ids"]).rename(columns={
        "param": "hyperparameter", "is_baseline": "baseline", "baseline_changed": "baseline changed",
        "mean": f"mean {view.objective}", "std": "std", "test_accuracy": "mean test_accuracy"})
    section.blocks.append(_table(shown_values, "Every value tried"))
    return section


def _lr_find_section(view: _RunView, sid: str, level: int) -> _Section:
    from automnist.experiments.lr_find import RULE, plot_lr_find

    section = _Section(sid, "Learning-rate range test", level)
    if "lr_curves" not in view.tables:
        section.blocks.append(_missing(view, "the range test"))
        return section
    settings = _config(view.info).get("lr_find") or {}
    if settings:
        section.blocks.append(_kv([
            ("Learning rate", f"{_cell(settings.get('min_lr'))[0]} to {_cell(settings.get('max_lr'))[0]}, growing "
                              f"exponentially over {_cell(settings.get('batches'))[0]} batches of "
                              f"{_cell(settings.get('batch_size'))[0]}"),
            ("Loss smoothing", f"exponential moving average, beta {_cell(settings.get('beta'))[0]}, bias-corrected"),
            ("Stops when", f"the smoothed loss exceeds {_cell(settings.get('diverge'))[0]}x its minimum, or is NaN"),
            ("Suggested learning rate", str(settings.get("rule") or RULE)),
        ]))
    section.blocks.append(_figure(plot_lr_find(view.tables["lr_curves"]), "", "loss against learning rate per optimizer",
                                  "Faint: raw per-batch loss; dot: the suggested learning rate."))
    section.blocks.append(_table(view.tables["lr_suggestions"], "Suggested learning rate per optimizer",
                                 note="min_loss is the lowest smoothed loss and min_loss_lr where it was reached; "
                                      "last_lr is where the test stopped."))
    return section


def _lr_used_section(view: _RunView, sid: str, level: int) -> _Section:
    from automnist.experiments.lr_find import plot_lr_find

    section = _Section(sid, "Learning rates from the range test", level)
    section.blocks.append(_table(view.tables["lr_used"], "learning_rate: from_lr_find resolved to",
                                 note="Each optimizer trains with the suggestion of the newest range test of this spec "
                                      "and data set (automnist lr-find), or of one run for this search."))
    curves = view.tables.get("lr_used_curves")
    if curves is not None and len(curves):
        section.blocks.append(_figure(plot_lr_find(curves), "", "the range-test curves behind these learning rates"))
    return section


def _denoise_section(view: _RunView, sid: str, level: int) -> _Section:
    """Seed 000 Q1-Q3: one classifier on clean, noisy and denoised images."""
    from automnist import plots

    section = _Section(sid, "Clean, noisy and denoised images", level)
    if "denoise" not in view.tables:
        section.blocks.append(_missing(view, "the denoising comparison"))
        return section
    note = _config(view.info).get("denoise_compare") or {}
    noise, ae = note.get("noise") or {}, note.get("denoise") or {}
    if noise or ae:
        level_text = (f"std {noise.get('std')}" if noise.get("kind") == "gaussian" else f"amount {noise.get('amount')}")
        section.blocks.append(_kv([
            ("Noise", f"{noise.get('kind', '?')}, {level_text}, on {'+'.join(noise.get('on') or [])} images"),
            ("Denoising autoencoder", f"Conv2D+MaxPooling encoder / Conv2D+UpSampling decoder, filters "
                                      f"{'-'.join(str(f) for f in ae.get('filters') or [])}, {ae.get('epochs')} "
                                      f"epochs, batch {ae.get('batch_size')}, trained noisy -> clean on the training images"),
            ("Autoencoder's final loss", note.get("denoiser_loss")),
            ("Classifier", f"the same configuration and seed under each condition, {note.get('epochs')} epochs"),
        ]))
    table = view.tables["denoise"]
    section.blocks.append(_figure(plots.plot_denoising(table), "", "test accuracy on clean, noisy and denoised images"))
    section.blocks.append(_table(table.drop(columns=["run"]), "Test accuracy per condition",
                                 note="clean: no noise; noisy: noise added; denoised: the noisy images passed "
                                      "through the autoencoder before the classifier (train and test alike)."))
    return section


def _predictions_section(view: _RunView, sid: str, level: int) -> _Section:
    from automnist import plots

    section = _Section(sid, "Best model on the test set", level)
    p = view.predictions
    if p is None:
        section.blocks.append(_Block("text", "", f"Not available: {view.predictions_note}."))
        return section
    names = [str(c) for c in p["class_names"]]
    y_true = p["y_true"].astype(int)
    y_pred = p["y_prob"].argmax(axis=1)
    section.blocks.append(_kv([("Trial", str(p["trial_id"])), ("Test images", len(y_true)),
                               ("Test accuracy", float(np.mean(y_true == y_pred))), ("Classes", len(names))]))
    section.blocks.append(_table(aggregate.classification_report_frame(y_true, y_pred, names),
                                 "Classification report", index=True))
    section.blocks.append(_Block("gallery", "", [
        {"src": _png(plots.plot_confusion(y_true, y_pred, names)), "alt": "confusion matrix", "title": ""},
        {"src": _png(plots.plot_roc(y_true, p["y_prob"], names)), "alt": "ROC curves", "title": ""},
        {"src": _png(plots.plot_pr(y_true, p["y_prob"], names)), "alt": "precision-recall curves", "title": ""},
    ]))
    if len(p["mis_images"]):
        section.blocks.append(_figure(plots.plot_misclassified(p["mis_images"], p["mis_true"], p["mis_pred"], names),
                                      "", "misclassified test images"))
    if len(p["sample_images"]):
        section.blocks.append(_figure(plots.plot_samples(p["sample_images"], p["sample_labels"], names),
                                      "", "sample training images"))
    return section


def _comparison_sections(desc: _Description) -> list[_Section]:
    from automnist import plots

    obj, d, t = desc.objective, desc.direction, desc.trials
    sections = []
    overview = _Section("comparison", "Runs side by side", 2)
    other = {v.objective for v in desc.runs} - {obj}
    if other:
        overview.blocks.append(_Block("text", "", f"The runs optimise different objectives; they are compared "
                                                  f"on {obj} (also: {', '.join(sorted(other))})."))
    overview.blocks.append(_table(desc.tables["summary"], "One row per run"))
    overview.blocks.append(_figure(plots.plot_run_comparison(t, obj), "", f"{obj} per run"))
    board = desc.tables["leaderboard"]
    overview.blocks.append(_figure(plots.plot_leaderboard(t, obj, d), "", "best trials of all runs"))
    overview.blocks.append(_table(board, f"All {len(board)} ok trials ranked together by {obj}"))
    sections.append(overview)

    shared = _Section("shared-effects", "Shared hyperparameters, per run", 2)
    eff = desc.tables["effects_by_run"]
    if len(eff):
        shared.blocks.append(_table(eff, f"{obj} at each value, per run"))
        params = list(pd.unique(eff["param"]))[:MAX_EFFECT_PLOTS]
        shared.blocks.append(_Block("gallery", "", [
            {"src": _png(plots.plot_effect(t, p, obj, d)), "alt": f"{obj} by {p} per run", "title": ""}
            for p in params]))
    else:
        shared.blocks.append(_Block("text", "", "The runs share no searched hyperparameter."))
    sections.append(shared)
    return sections


def _structure(desc: _Description) -> list[_Section]:
    if len(desc.runs) == 1:
        return _run_sections(desc.runs[0], 2, "")
    sections = _comparison_sections(desc)
    for i, view in enumerate(desc.runs):
        prefix = f"run{i + 1}"
        sections.append(_Section(_slug(prefix), f"Run {i + 1}: {view.name}", 2))
        sections.extend(_run_sections(view, 3, prefix))
    return sections


# =========================================================================== render


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("automnist", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(desc: _Description, sections: list[_Section]) -> str:
    from markupsafe import Markup

    from automnist import __version__

    env = _environment()
    script = env.get_template("_sorter.js.j2").render()
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
           "base-uri 'none'; form-action 'none'")
    names = [v.name for v in desc.runs]
    title = f"automnist report: {names[0]}" if len(names) == 1 else "automnist comparison: " + " vs ".join(names)
    generated = _dt.datetime.now(tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return env.get_template("report.html.j2").render(
        title=title, runs=names, sections=sections, generated=generated, version=__version__,
        script=Markup(script), csp=csp,  # the script is our own package file, not user data
    )


# =========================================================================== public API


def _safe_name(run: str) -> str:
    from automnist.runs import run_dir

    return run_dir(".", run).name


def _results_dir_of(store: Store) -> Path:
    path = getattr(store, "path", None)
    return Path(path).parent if path is not None else Path("results")


def write_report(
    store: Store, runs: Sequence[str] | str, out: Path | None = None, results_dir: Path | None = None
) -> Path:
    """Write one self-contained HTML report of one or several runs.

    Parameters
    ----------
    store : Store
        The results store holding the runs.
    runs : list of str
        Run names; one gives a run report, several a side-by-side comparison followed
        by each run's report.
    out : Path, optional
        Output file.  Default: ``<results_dir>/<run>/report.html`` for one run,
        ``<results_dir>/compare-<a>-vs-<b>.html`` for several (names made safe for paths).
    results_dir : Path, optional
        Where runs keep ``<run>/predictions.npz``; default: the store's directory.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    StoreError
        If a run is not in the store.
    ValueError
        If ``runs`` is empty or names a run twice.
    """
    names = [runs] if isinstance(runs, str) else list(runs)
    if not names:
        raise ValueError("runs: need at least one run name, got []")
    if len(set(names)) != len(names):
        raise ValueError(f"runs: each run may appear once, got {names!r}")
    results_dir = Path(results_dir) if results_dir is not None else _results_dir_of(store)
    desc = _describe(store, names, results_dir)
    html = _render(desc, _structure(desc))
    if out is None:
        if len(names) == 1:
            out = results_dir / _safe_name(names[0]) / "report.html"
        else:
            stem = "compare-" + "-vs-".join(_safe_name(n) for n in names)
            out = results_dir / f"{stem[:180]}.html"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes and newlines in cells escaped)."""
    def text(value: Any) -> str:
        return _cell(value)[0].replace("|", "\\|").replace("\n", " ")

    header = [text(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(text(v) for v in row) + " |" for row in frame.itertuples(index=False, name=None)]
    return "\n".join(lines)


def export_markdown(store: Store, run: str) -> str:
    """A run's summary, leaderboard, effect and significance tables as Markdown.

    Raises
    ------
    StoreError
        If the run is not in the store.
    """
    info = store.require_run(run)
    objective, direction = _objective_of(info)
    view = _RunView(run, info, objective, direction,
                    _ensure_columns(store.trials_frame(run), objective), store.folds_frame(run),
                    pd.DataFrame())
    _run_tables(view)
    counts = view.trials["status"].value_counts()
    best = _best_row(view)
    parts = [
        f"# automnist run {run}",
        "",
        f"- data set: {info.get('dataset', '')}; strategy: {info.get('strategy', '')}; "
        f"objective: {objective} ({direction})",
        f"- trials: {len(view.trials)} (ok {int(counts.get('ok', 0))}, failed {int(counts.get('failed', 0))}, "
        f"infeasible {int(counts.get('infeasible', 0))})",
    ]
    if best is not None:
        parts.append(f"- best: trial {best['trial_id']}, {objective} = {_cell(best[objective])[0]}")
    parts += ["", "## Leaderboard", "", _markdown_table(view.tables["leaderboard"])]
    if len(view.tables["effects"]):
        parts += ["", "## Hyperparameter effects", "", _markdown_table(view.tables["effects"])]
    if len(view.tables["significance"]):
        parts += ["", "## Does each hyperparameter matter? (Kruskal-Wallis)", "",
                  _markdown_table(view.tables["significance"])]
    parts += ["", "## Best vs runner-up", "", _markdown_table(view.tables["compare_best"])]
    if len(view.tables["failures"]):
        parts += ["", "## Failed and infeasible trials", "", _markdown_table(view.tables["failures"])]
    return "\n".join(parts) + "\n"


def export_table(store: Store, run: str, fmt: str = "csv") -> str:
    """One row per trial of ``run`` as CSV or JSON (records).

    Columns: ``trial_id, status, param_<name>..., val_accuracy`` (and the run's
    objective when it is another metric), ``test_accuracy, duration_s, n_params,
    error``; when CV was used, ``fold_<i>_val_accuracy`` for every fold ``i`` and
    ``fold_mean_val_accuracy``, ``fold_std_val_accuracy`` (sample std, ``ddof=1``).

    Raises
    ------
    StoreError
        If the run is not in the store.
    ValueError
        If ``fmt`` is not ``"csv"`` or ``"json"``.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"fmt: must be 'csv' or 'json', got {fmt!r}")
    info = store.require_run(run)
    objective, _ = _objective_of(info)
    trials = _ensure_columns(store.trials_frame(run), "val_accuracy")
    if objective not in trials.columns:
        trials[objective] = np.nan
    metrics = ["val_accuracy"] + ([objective] if objective != "val_accuracy" else [])
    columns = ["trial_id", "status", *aggregate.param_columns(trials), *metrics,
               "test_accuracy", "duration_s", "n_params", "error"]
    table = trials[columns].copy()
    folds = store.folds_frame(run)
    if not folds.empty and "val_accuracy" in folds.columns:
        wide = folds.pivot_table(index="trial_id", columns="fold", values="val_accuracy", aggfunc="first")
        wide = wide.reindex(columns=sorted(wide.columns))
        scores = wide.copy()
        wide.columns = [f"fold_{f}_val_accuracy" for f in wide.columns]
        wide["fold_mean_val_accuracy"] = scores.mean(axis=1)
        wide["fold_std_val_accuracy"] = scores.std(axis=1, ddof=1)
        table = table.merge(wide, left_on="trial_id", right_index=True, how="left")
    if fmt == "csv":
        return table.to_csv(index=False)
    return table.to_json(orient="records", indent=1)
