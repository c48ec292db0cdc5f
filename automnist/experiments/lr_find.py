"""Learning-rate range test (Leslie Smith 2015; fast.ai's ``lr_find``), seed 004 section 3.2.2.

For each optimizer a fresh model of the spec's baseline configuration (same seed, so the
same initial weights) trains on mini-batches while a Keras callback raises
``model.optimizer.learning_rate`` exponentially from ``min_lr`` to ``max_lr``, one step per
batch.  The training loss of every batch is recorded and smoothed with an exponential
moving average with bias correction (``beta = 0.98``); the test stops early when the
smoothed loss exceeds 4x its minimum so far or the loss is NaN (diverged).

Suggested learning rate (:data:`RULE`): the learning rate at which the smoothed loss falls
fastest per decade of learning rate -- the most negative ``d smoothed_loss / d log10(lr)``
(``numpy.gradient``), looked for between batch 11 and the minimum of the smoothed loss.
The first 10 batches (at most a quarter of the curve) are skipped as fast.ai does: the
bias-corrected average of a handful of batches is still noise.  This is the "minimum point
on the graph with the fastest decrease" seed 004 reads off its plots by hand.  No
suggestion (NaN) when the loss never fell.

A test is stored as a run of kind ``lr_find``: one trial per optimizer (``trial_id`` is
the optimizer), per-batch history rows with ``metric`` ``lr``, ``loss`` and
``smoothed_loss`` (``epoch`` is the 1-based batch index), and metrics ``suggested_lr``,
``min_loss`` (smoothed), ``min_loss_lr``, ``last_lr``, ``diverged`` (1/0), ``batches``,
``batch_size``, ``min_lr``, ``max_lr``.  :func:`lr_find_curves` turns the stored frames back
into curves and :func:`plot_lr_find` draws them.

A spec may say ``learning_rate: from_lr_find``: :func:`automnist.search.run_search`
resolves it with :func:`resolve_learning_rates` before training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automnist.errors import AutomnistError, SpecError
from automnist.records import TrialRecord
from automnist.spec import LR_FROM_LR_FIND, OPTIMIZERS, ChoiceParam, FixedParam, SearchSpec

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "RULE",
    "LRFindResult",
    "lr_find",
    "lowest_index",
    "lr_find_curves",
    "plot_lr_find",
    "resolve_learning_rates",
    "smooth_losses",
    "spec_optimizers",
    "stop_index",
    "suggest_lr",
    "uses_lr_find",
    "write_spec",
]

#: How the suggested learning rate is chosen (also stored with every lr_find run).
RULE = ("steepest descent: the learning rate where the smoothed loss falls fastest per decade "
        "(most negative d loss / d log10 lr), between batch 11 and the loss minimum")
#: Batches ignored at the start of a curve (capped at a quarter of its length).
SKIP_START = 10

_CURVE_METRICS = ("lr", "loss", "smoothed_loss")


# =========================================================================== pure numbers


def smooth_losses(losses: Sequence[float], beta: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction.

    ``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i`` (``avg_0 = 0``) and
    ``smoothed_i = avg_i / (1 - beta**i)`` for ``i = 1..n``; computed with
    ``scipy.signal.lfilter``.  A NaN propagates to every later value.
    """
    from scipy.signal import lfilter

    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta: must be in [0, 1), got {beta!r}")
    x = np.asarray(losses, dtype=np.float64)
    if x.size == 0:
        return x
    avg = lfilter([1.0 - beta], [1.0, -beta], x)
    return avg / (1.0 - beta ** np.arange(1, x.size + 1))


def stop_index(smoothed: Sequence[float], factor: float = 4.0) -> int | None:
    """The first batch at which the test has diverged, or None.

    Diverged: the smoothed loss is not finite, or exceeds ``factor`` times the lowest
    smoothed loss before it.
    """
    best = math.inf
    for i, value in enumerate(np.asarray(smoothed, dtype=np.float64)):
        if not math.isfinite(value) or (i > 0 and value > factor * best):
            return i
        best = min(best, value)
    return None


def _usable(lr: np.ndarray, s: np.ndarray, skip_start: int) -> tuple[int, int]:
    """(first, end): the finite part of a curve after the skipped start."""
    bad = np.flatnonzero(~np.isfinite(s) | ~np.isfinite(lr) | (lr <= 0))
    end = int(bad[0]) if bad.size else s.size
    return min(int(skip_start), end // 4), end


def lowest_index(lrs: Sequence[float], smoothed: Sequence[float], skip_start: int = SKIP_START) -> int | None:
    """Index of the minimum smoothed loss after the skipped start (None: no finite point)."""
    lr = np.asarray(lrs, dtype=np.float64)
    s = np.asarray(smoothed, dtype=np.float64)
    first, end = _usable(lr, s, skip_start)
    if end <= first:
        return None
    return first + int(np.argmin(s[first:end]))


def suggest_lr(lrs: Sequence[float], smoothed: Sequence[float], skip_start: int = SKIP_START) -> float:
    """The suggested learning rate of one curve (see :data:`RULE`).

    Parameters
    ----------
    lrs : sequence of float
        Learning rate of each batch (increasing).
    smoothed : sequence of float
        Smoothed loss of each batch.
    skip_start : int
        Batches ignored at the start (at most a quarter of the finite curve).

    Returns
    -------
    float
        The learning rate at the most negative slope of ``smoothed`` against
        ``log10(lrs)``, between the skipped start and the minimum of ``smoothed``; NaN
        when fewer than three points lead down to the minimum (the loss never fell).
    """
    lr = np.asarray(lrs, dtype=np.float64)
    s = np.asarray(smoothed, dtype=np.float64)
    if lr.shape != s.shape:
        raise ValueError(f"lrs and smoothed must have the same length, got {lr.size} and {s.size}")
    first, _ = _usable(lr, s, skip_start)
    lowest = lowest_index(lr, s, skip_start)
    if lowest is None or lowest - first < 2:
        return math.nan
    part = slice(first, lowest + 1)
    slope = np.gradient(s[part], np.log10(lr[part]))
    return float(lr[first + int(np.argmin(slope))])


# =========================================================================== training


def _range_test(model: Any, x: np.ndarray, y: np.ndarray, *, min_lr: float, max_lr: float, batches: int,
                batch_size: int, beta: float, diverge: float) -> dict[str, Any]:
    """Train ``model`` with an exponentially growing learning rate; per-batch lr and loss."""
    import keras

    schedule = np.geomspace(min_lr, max_lr, batches)

    class RangeTest(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.lrs: list[float] = []
            self.losses: list[float] = []
            self.avg = 0.0
            self.best = math.inf
            self.reason = f"reached max_lr after {batches} batches"
            self.diverged = False

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.model.optimizer.learning_rate = float(schedule[len(self.lrs)])
            # Keras' batch logs hold the running mean of the epoch: reset it so "loss"
            # at the batch end is this batch's loss.
            self.model.reset_metrics()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            loss = float((logs or {}).get("loss", math.nan))
            self.lrs.append(float(schedule[len(self.lrs)]))
            self.losses.append(loss)
            i = len(self.losses)
            self.avg = beta * self.avg + (1.0 - beta) * loss
            smoothed = self.avg / (1.0 - beta**i)
            if not math.isfinite(smoothed) or (i > 1 and smoothed > diverge * self.best):
                what = "loss is NaN" if not math.isfinite(smoothed) else f"smoothed loss above {diverge:g}x its minimum"
                self.reason = f"diverged at lr {self.lrs[-1]:.3g} after {i} batches ({what})"
                self.diverged = True
                self.model.stop_training = True
            self.best = min(self.best, smoothed)
            if i >= batches:
                self.model.stop_training = True

    steps = max(1, math.ceil(len(x) / batch_size))
    callback = RangeTest()
    hist = model.fit(x, y, batch_size=batch_size, epochs=math.ceil(batches / steps), shuffle=True, verbose=0,
                     callbacks=[callback])
    return {"lrs": callback.lrs, "losses": callback.losses, "reason": callback.reason,
            "diverged": callback.diverged, "epochs": len(hist.history.get("loss", []))}


def spec_optimizers(spec: SearchSpec) -> list[str]:
    """The optimizer(s) a spec trains with: its fixed value or its choices (default adam)."""
    from automnist.spec import DEFAULTS

    p = spec.param_map.get("optimizer")
    if p is None:
        return [DEFAULTS["optimizer"]]
    if isinstance(p, ChoiceParam):
        return [str(v) for v in p.values]
    if isinstance(p, FixedParam):
        return [str(p.value)]
    raise SpecError(spec.source, "params.optimizer", f"must be fixed or a choice, got {p!r}")


@dataclass
class LRFindResult:
    """What :func:`lr_find` returns.

    Attributes
    ----------
    run : str or None
        The stored run (None when no ``results_dir`` was given).
    records : list of TrialRecord
        One per optimizer.
    suggestions : dict of str to float
        Suggested learning rate per optimizer (NaN: none).
    curves : DataFrame
        :func:`lr_find_curves` of the records.
    rule : str
        :data:`RULE`.
    """

    run: str | None
    records: list[TrialRecord]
    suggestions: dict[str, float]
    curves: Any
    rule: str = RULE
    notes: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One human-readable line per optimizer."""
        out = []
        for rec in self.records:
            m = rec.metrics
            lr = m.get("suggested_lr", math.nan)
            if rec.status != "ok":
                out.append(f"{rec.trial_id:<9} failed: {rec.error}")
            elif lr is None or math.isnan(lr):
                out.append(f"{rec.trial_id:<9} no suggestion: the loss never fell (lower --min-lr); "
                           f"{self.notes.get(rec.trial_id, '')}")
            else:
                out.append(f"{rec.trial_id:<9} suggested learning rate {lr:.3g}  "
                           f"(smoothed loss min {m['min_loss']:.4g} at lr {m['min_loss_lr']:.3g}; "
                           f"{self.notes.get(rec.trial_id, '')})")
        return out


def lr_find(
    spec: SearchSpec,
    optimizers: Sequence[str] | None = None,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 100.0,
    batches: int = 100,
    batch_size: int | None = None,
    dataset: Any = None,
    data_dir: str | None = None,
    seed: int | None = None,
    beta: float = 0.98,
    diverge: float = 4.0,
    results_dir: str | Path | None = None,
    run_name: str | None = None,
    progress: bool = False,
) -> LRFindResult:
    """Run a learning-rate range test per optimizer on the spec's baseline configuration.

    Parameters
    ----------
    spec : SearchSpec
        The architecture and data: its fixed values plus each searched
        hyperparameter's default (``spec.default_values()``).
    optimizers : sequence of str, optional
        Optimizers to test (default: the spec's optimizer or optimizer choices).
    min_lr, max_lr : float
        First and last learning rate; it grows exponentially per batch.
    batches : int
        Batches from ``min_lr`` to ``max_lr`` (the data is cycled as needed).
    batch_size : int, optional
        Default: the baseline configuration's ``batch_size``.
    dataset : automnist.data.Dataset or str, optional
        Arrays to use (e.g. a search's prepared data), or a data set name overriding
        ``spec.data.dataset``.  Default: load ``spec.data`` (noise and denoising applied).
    data_dir : str, optional
        Where to look for data set files first.
    seed : int, optional
        Weight initialisation and shuffling seed, the same for every optimizer
        (default ``spec.search.seed``).
    beta : float
        Smoothing factor of the loss (exponential moving average with bias correction).
    diverge : float
        Stop when the smoothed loss exceeds this many times its minimum.
    results_dir : path, optional
        Store the test as a run of kind ``lr_find`` in ``<results_dir>/automnist.db``.
    run_name : str, optional
        Default ``<spec name>-lr_find-<time>``.
    progress : bool
        Show a progress bar over optimizers.

    Returns
    -------
    LRFindResult

    Raises
    ------
    ValueError
        Bad range, batch count or optimizer name.
    """
    import keras

    from automnist.builders import build_model
    from automnist.runner import encode_labels, free_memory, split_indices

    if not (0 < min_lr < max_lr):
        raise ValueError(f"min_lr/max_lr: need 0 < min_lr < max_lr, got {min_lr!r} and {max_lr!r}")
    if int(batches) < 3:
        raise ValueError(f"batches: must be an integer >= 3, got {batches!r}")
    opts = list(optimizers) if optimizers else spec_optimizers(spec)
    unknown = [o for o in opts if o not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"optimizers: unknown optimizer {unknown[0]!r}; known: {', '.join(OPTIMIZERS)}")
    if isinstance(dataset, str):
        spec = spec.replace(dataset=dataset)
        dataset = None
    if dataset is None:
        from automnist.runs import prepare_data

        dataset = prepare_data(spec, data_dir)
    seed = spec.search.seed if seed is None else int(seed)
    base = spec.default_values()
    bs = int(batch_size or base.get("batch_size") or 32)
    vs = float(base.get("validation_split") or spec.data.validation_split)
    (train_idx, _), = split_indices(dataset.y_train, cv=None, validation_split=vs, seed=spec.search.seed)
    x = dataset.x_train[train_idx]
    settings = {"min_lr": float(min_lr), "max_lr": float(max_lr), "batches": int(batches), "batch_size": bs,
                "beta": float(beta), "diverge": float(diverge), "optimizers": opts, "seed": seed, "rule": RULE}
    store = None
    name = None
    if results_dir is not None:
        from automnist.runs import create_spec_run
        from automnist.store import Store

        store = Store.at(results_dir)
        name = run_name or f"{spec.name}-lr_find-{time.strftime('%Y%m%d-%H%M%S')}"
        create_spec_run(store, name, spec, kind="lr_find", strategy="lr_find", seed=seed,
                        extra_config={"lr_find": settings})
    records: list[TrialRecord] = []
    notes: dict[str, str] = {}
    status = "failed"
    bar = None
    try:
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(opts), desc=name or "lr_find", unit="optimizer", dynamic_ncols=True)
        for number, opt in enumerate(opts):
            values = {**base, "optimizer": opt, "learning_rate": float(min_lr)}
            started, t0 = time.time(), time.perf_counter()
            record = TrialRecord(trial_id=opt, number=number,
                                 params={k: v for k, v in values.items() if k != "learning_rate"},
                                 seed=seed, started_at=started)
            try:
                y = encode_labels(dataset.y_train[train_idx], dataset.n_classes, str(values.get("loss")))
                keras.utils.set_random_seed(seed)
                model = build_model(values, dataset.input_shape, dataset.n_classes, model=spec.model, seed=seed)
                record.n_params = int(model.count_params())
                out = _range_test(model, x, y, min_lr=min_lr, max_lr=max_lr, batches=int(batches), batch_size=bs,
                                  beta=beta, diverge=diverge)
                del model
                smoothed = smooth_losses(out["losses"], beta)
                lrs = np.asarray(out["lrs"])
                lowest = lowest_index(lrs, smoothed)
                record.metrics = {
                    "suggested_lr": suggest_lr(lrs, smoothed),
                    "min_loss": math.nan if lowest is None else float(smoothed[lowest]),
                    "min_loss_lr": math.nan if lowest is None else float(lrs[lowest]),
                    "last_lr": float(lrs[-1]) if len(lrs) else math.nan,
                    "diverged": float(out["diverged"]),
                    "batches": float(len(lrs)), "batch_size": float(bs),
                    "min_lr": float(min_lr), "max_lr": float(max_lr),
                }
                for b, (lr, loss, sm) in enumerate(zip(lrs, out["losses"], smoothed), start=1):
                    for metric, value in (("lr", lr), ("loss", loss), ("smoothed_loss", sm)):
                        record.history.append({"fold": 0, "epoch": b, "metric": metric, "value": float(value)})
                record.epochs = int(out["epochs"])
                notes[opt] = out["reason"]
            except Exception as exc:  # noqa: BLE001 - one optimizer failing does not stop the others
                from automnist.errors import InfeasibleConfig

                record.status = "infeasible" if isinstance(exc, InfeasibleConfig) else "failed"
                record.error = f"{type(exc).__name__}: {exc}"[:2000]
                record.metrics = {"suggested_lr": math.nan}
            finally:
                free_memory()
            record.duration_s = time.perf_counter() - t0
            record.ended_at = time.time()
            records.append(record)
            if store is not None:
                store.add_trial(name, record)
            if bar is not None:
                bar.update(1)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.finish_run(name, status)
            store.close()
    suggestions = {r.trial_id: float(r.metrics.get("suggested_lr", math.nan)) for r in records}
    return LRFindResult(name, records, suggestions, _records_curves(records), RULE, notes)


# =========================================================================== frames and plots


def _records_curves(records: list[TrialRecord]) -> pd.DataFrame:
    import pandas as pd

    hist = pd.DataFrame(
        [{"run": "", "trial_id": r.trial_id, **h} for r in records for h in r.history],
        columns=["run", "trial_id", "fold", "epoch", "metric", "value"],
    )
    trials = pd.DataFrame({"run": [""] * len(records), "trial_id": [r.trial_id for r in records],
                           "suggested_lr": [r.metrics.get("suggested_lr", math.nan) for r in records]})
    return lr_find_curves(hist, trials)


def lr_find_curves(history: pd.DataFrame, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """The range-test curves of ``lr_find`` run(s) in wide form.

    Parameters
    ----------
    history : DataFrame
        ``Store.history_frame(runs)`` of lr_find runs (metrics ``lr``, ``loss``,
        ``smoothed_loss`` per batch).
    trials : DataFrame, optional
        ``Store.trials_frame(runs)``; adds each optimizer's ``suggested_lr``.

    Returns
    -------
    DataFrame
        ``run, optimizer, batch, lr, loss, smoothed_loss`` (+ ``suggested_lr``), one row
        per batch, ordered by run, optimizer (as tested) and batch.
    """
    import pandas as pd

    columns = ["run", "optimizer", "batch", *_CURVE_METRICS]
    hist = history[history["metric"].isin(_CURVE_METRICS)]
    if hist.empty:
        out = pd.DataFrame(columns=columns)
    else:
        order = {key: i for i, key in enumerate(dict.fromkeys(zip(hist["run"], hist["trial_id"])))}
        wide = hist.pivot_table(index=["run", "trial_id", "epoch"], columns="metric", values="value",
                                aggfunc="first", sort=False).reset_index()
        wide.columns.name = None
        wide["_order"] = [order[(r, t)] for r, t in zip(wide["run"], wide["trial_id"])]
        wide = wide.sort_values(["_order", "epoch"], kind="stable").drop(columns="_order")
        out = wide.rename(columns={"trial_id": "optimizer", "epoch": "batch"}).reindex(columns=columns)
        out = out.reset_index(drop=True)
    if trials is not None and "suggested_lr" in trials:
        sugg = trials[["run", "trial_id", "suggested_lr"]].rename(columns={"trial_id": "optimizer"})
        out = out.merge(sugg, on=["run", "optimizer"], how="left")
    return out


def plot_lr_find(curves: pd.DataFrame, *, show_raw: bool = True) -> Figure:
    """Loss against learning rate (log x), one line per optimizer, the suggestion marked.

    Parameters
    ----------
    curves : DataFrame
        :func:`lr_find_curves` (with ``suggested_lr`` for the markers).
    show_raw : bool
        Also draw the raw per-batch loss, faintly.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    if curves.empty:
        ax.text(0.5, 0.5, "no range-test curves", ha="center", va="center")
        ax.set_axis_off()
        return fig
    several_runs = curves["run"].nunique() > 1
    low, high = math.inf, -math.inf
    for (run, opt), c in curves.groupby(["run", "optimizer"], sort=False):
        label = f"{run}: {opt}" if several_runs else str(opt)
        sm = c["smoothed_loss"].to_numpy(dtype=float)
        line = ax.plot(c["lr"], sm, label=label)[0]
        if show_raw:
            ax.plot(c["lr"], c["loss"], color=line.get_color(), alpha=0.2, linewidth=0.8)
        finite = sm[np.isfinite(sm)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite[0]))
        lr = c["suggested_lr"].iloc[0] if "suggested_lr" in c else math.nan
        if lr is not None and np.isfinite(lr):
            y = float(np.interp(np.log10(lr), np.log10(c["lr"].to_numpy(float)), sm))
            ax.plot([lr], [y], marker="o", markersize=7, color=line.get_color())
            ax.annotate(f"{lr:.2g}", (lr, y), textcoords="offset points", xytext=(4, 6), fontsize=8,
                        color=line.get_color())
    ax.set_xscale("log")
    if math.isfinite(low) and math.isfinite(high) and high > low:
        pad = (high - low) * 0.1
        ax.set_ylim(low - pad, high + 3 * pad)  # the divergence would squash the useful part
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("Learning-rate range test (dot: suggested learning rate)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# =========================================================================== specs


def uses_lr_find(spec: SearchSpec) -> bool:
    """Whether ``spec`` says ``learning_rate: from_lr_find``."""
    p = spec.param_map.get("learning_rate")
    return isinstance(p, FixedParam) and p.value == LR_FROM_LR_FIND


def _latest_suggestions(store: Any, spec: SearchSpec, optimizers: list[str]) -> dict[str, tuple[float, str]]:
    """Per optimizer, the newest finished lr_find run of the same spec name and data set
    with a suggestion for it: ``{optimizer: (learning rate, run)}``."""
    runs = store.runs_frame()
    if runs.empty:
        return {}
    runs = runs[(runs["kind"] == "lr_find") & (runs["spec_name"] == spec.name) & (runs["dataset"] == spec.data.dataset)
                & (runs["status"] == "finished")].sort_values("run_id", ascending=False)
    found: dict[str, tuple[float, str]] = {}
    for run in runs["run"]:
        for rec in store.get_trials(run):
            lr = rec.metrics.get("suggested_lr")
            if rec.trial_id in optimizers and rec.trial_id not in found and rec.status == "ok" \
                    and lr is not None and math.isfinite(lr):
                found[rec.trial_id] = (float(lr), run)
        if len(found) == len(optimizers):
            break
    return found


def resolve_learning_rates(
    spec: SearchSpec,
    *,
    store: Any,
    dataset: Any,
    results_dir: str | Path,
    run: str,
    progress: bool = False,
) -> tuple[SearchSpec, dict[str, Any]]:
    """Replace ``learning_rate: from_lr_find`` by suggested learning rates.

    For each of the spec's optimizers, the newest finished lr_find run in ``store`` for
    the same spec name and data set is reused; the missing optimizers are tested now
    (run ``<run>-lr_find``, stored).  One optimizer gives a number, several a mapping
    ``{optimizer: learning rate}``.

    Returns
    -------
    (SearchSpec, dict)
        The resolved spec and a note for the run's config: ``learning_rate``, ``runs``
        (lr_find run per optimizer), ``tested_now`` (optimizers tested for this run),
        ``rule``.

    Raises
    ------
    AutomnistError
        When the range test gives no suggestion for an optimizer.
    """
    import dataclasses

    if not uses_lr_find(spec):
        return spec, {}
    optimizers = spec_optimizers(spec)
    found = _latest_suggestions(store, spec, optimizers)
    missing = [o for o in optimizers if o not in found]
    if missing:
        name, n = f"{run}-lr_find", 2
        while store.get_run(name) is not None:
            name, n = f"{run}-lr_find-{n}", n + 1
        result = lr_find(spec, missing, dataset=dataset, results_dir=results_dir, run_name=name, progress=progress)
        for opt in missing:
            lr = result.suggestions.get(opt, math.nan)
            if not math.isfinite(lr):
                rec = next(r for r in result.records if r.trial_id == opt)
                why = rec.error or result.notes.get(opt, "the loss never fell")
                raise AutomnistError(
                    f"params.learning_rate: {LR_FROM_LR_FIND}: the range test (run {name!r}) gave no learning rate "
                    f"for optimizer {opt!r} ({why}); run `automnist lr-find` with other --min-lr/--max-lr "
                    f"or give learning_rate a number"
                )
            found[opt] = (float(f"{lr:.3g}"), name)
    lrs = {o: found[o][0] for o in optimizers}
    value: Any = lrs[optimizers[0]] if len(optimizers) == 1 else lrs
    from automnist.spec import _freeze

    params = tuple(FixedParam("learning_rate", _freeze(value)) if p.name == "learning_rate" else p
                   for p in spec.params)
    note = {"learning_rate": value, "runs": {o: found[o][1] for o in optimizers}, "tested_now": missing,
            "rule": RULE}
    return dataclasses.replace(spec, params=params), note


def write_spec(spec: SearchSpec, suggestions: Mapping[str, float], out: str | Path, *,
               run: str | None = None) -> Path:
    """Write a copy of ``spec`` with the suggested learning rate(s) filled in.

    One optimizer (fixed ``optimizer``) gets ``learning_rate: <number>``; a choice over
    optimizers gets the per-optimizer mapping ``learning_rate: {adam: ..., sgd: ...}``.
    A header comment lists every suggestion (also those of optimizers the spec does not
    use).  Comments of the original file are not kept (the spec is rewritten from its
    parsed form).

    Raises
    ------
    AutomnistError
        When there is no suggestion for one of the spec's optimizers.
    """
    import yaml

    from automnist.spec import parse_spec

    wanted = spec_optimizers(spec)
    usable = {o: float(f"{lr:.3g}") for o, lr in suggestions.items() if lr is not None and math.isfinite(lr)}
    missing = [o for o in wanted if o not in usable]
    if missing:
        raise AutomnistError(
            f"--write-spec: no suggested learning rate for the spec's optimizer {missing[0]!r}; "
            f"test it too (--optimizers {','.join(wanted)})"
        )
    value: Any = usable[wanted[0]] if len(wanted) == 1 else {o: usable[o] for o in wanted}
    raw = spec.to_dict()
    raw["params"]["learning_rate"] = value
    parse_spec(raw, source=str(out))  # what we write must load
    listed = ", ".join(f"{o} {lr:.3g}" for o, lr in suggestions.items() if lr is not None and math.isfinite(lr))
    header = [
        f"# Written by `automnist lr-find` from {spec.source}" + (f" (run {run})" if run else "") + ".",
        f"# Suggested learning rates: {listed or 'none'}.",
        f"# Rule: {RULE}.",
    ]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None),
                    encoding="utf-8")
    return path
