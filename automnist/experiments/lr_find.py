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
``batch_size``, ``min_lr``, ``max_lr``.  :func:`automnist.aggregate.lr_find_curves` turns the
stored frames back into curves and :func:`automnist.plots.plot_lr_find` draws them.  The
curve math is in :mod:`automnist.experiments.lr_find_curve`; ``learning_rate: from_lr_find``
in :mod:`automnist.experiments.lr_find_spec`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automnist.aggregate.lr_find import records_curves
from automnist.builders import build_model
from automnist.data import Dataset
from automnist.errors import InfeasibleConfig, SpecError
from automnist.experiments.lr_find_curve import RULE, lowest_index, smooth_losses, stop_index, suggest_lr
from automnist.records import TrialRecord
from automnist.runner import free_memory, split_indices, targets_for_loss
from automnist.runs import create_spec_run, default_run_name, prepare_data
from automnist.spec import DEFAULTS, OPTIMIZERS, ChoiceParam, FixedParam, SearchSpec
from automnist.store import Store

__all__ = ["LRFindResult", "lr_find", "spec_optimizers"]


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
            self.reason = f"reached max_lr after {batches} batches"
            self.diverged = False

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.model.optimizer.learning_rate = float(schedule[len(self.lrs)])
            # Keras' batch logs hold the running mean of the epoch: reset it so "loss"
            # at the batch end is this batch's loss.
            self.model.reset_metrics()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.lrs.append(float(schedule[len(self.lrs)]))
            self.losses.append(float((logs or {}).get("loss", math.nan)))
            smoothed = smooth_losses(self.losses, beta)
            if stop_index(smoothed, diverge) is not None:
                what = "loss is NaN" if not math.isfinite(smoothed[-1]) else f"smoothed loss above {diverge:g}x its minimum"
                self.reason = f"diverged at lr {self.lrs[-1]:.3g} after {len(self.losses)} batches ({what})"
                self.diverged = True
                self.model.stop_training = True
            if len(self.losses) >= batches:
                self.model.stop_training = True

    steps = max(1, math.ceil(len(x) / batch_size))
    callback = RangeTest()
    hist = model.fit(x, y, batch_size=batch_size, epochs=math.ceil(batches / steps), shuffle=True, verbose=0,
                     callbacks=[callback])
    return {"lrs": callback.lrs, "losses": callback.losses, "reason": callback.reason,
            "diverged": callback.diverged, "epochs": len(hist.history.get("loss", []))}


def spec_optimizers(spec: SearchSpec) -> list[str]:
    """The optimizer(s) a spec trains with: its fixed value or its choices (default adam)."""
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
        :func:`automnist.aggregate.lr_find_curves` of the records.
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
        dataset = prepare_data(spec, data_dir)
    seed = spec.search.seed if seed is None else int(seed)
    base = spec.default_values()
    bs = int(batch_size or base.get("batch_size") or 32)
    vs = float(base.get("validation_split") or spec.data.validation_split)
    (train_idx, _), = split_indices(dataset.y_train, cv=None, validation_split=vs, seed=spec.search.seed)
    x = dataset.x_train[train_idx]
    settings = {"min_lr": float(min_lr), "max_lr": float(max_lr), "batches": int(batches), "batch_size": bs,
                "beta": float(beta), "diverge": float(diverge), "optimizers": opts, "seed": seed, "rule": RULE}
    store = name = None
    if results_dir is not None:
        store = Store.at(results_dir)
        name = run_name or default_run_name(spec, "lr_find")
        try:
            create_spec_run(store, name, spec, kind="lr_find", strategy="lr_find", seed=seed,
                            extra_config={"lr_find": settings})
        except BaseException:
            store.close()
            raise
    records: list[TrialRecord] = []
    notes: dict[str, str] = {}
    try:
        with store.recording(name) if store is not None else contextlib.nullcontext(), \
                _progress(progress, len(opts), name) as bar:
            for number, opt in enumerate(opts):
                record = _test_optimizer(spec, base, opt, number, dataset, x, train_idx, seed=seed, min_lr=min_lr,
                                         max_lr=max_lr, batches=int(batches), batch_size=bs, beta=beta,
                                         diverge=diverge, notes=notes)
                records.append(record)
                if store is not None:
                    store.add_trial(name, record)
                if bar is not None:
                    bar.update(1)
    finally:
        if store is not None:
            store.close()
    suggestions = {r.trial_id: float(r.metrics.get("suggested_lr", math.nan)) for r in records}
    return LRFindResult(name, records, suggestions, records_curves(records), RULE, notes)


# =========================================================================== frames and plots


@contextlib.contextmanager
def _progress(enabled: bool, total: int, name: str | None) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=name or "lr_find", unit="optimizer", dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _test_optimizer(spec: SearchSpec, base: dict[str, Any], opt: str, number: int, dataset: Dataset, x: np.ndarray,
                    train_idx: np.ndarray, *, seed: int, min_lr: float, max_lr: float, batches: int, batch_size: int,
                    beta: float, diverge: float, notes: dict[str, str]) -> TrialRecord:
    """One optimizer's range test as a trial record (failed or infeasible, never raising)."""
    import keras

    values = {**base, "optimizer": opt, "learning_rate": float(min_lr)}
    started, t0 = time.time(), time.perf_counter()
    record = TrialRecord(trial_id=opt, number=number, params={k: v for k, v in values.items() if k != "learning_rate"},
                         seed=seed, started_at=started)
    try:
        y = targets_for_loss(dataset.y_train[train_idx], dataset.n_classes, str(values.get("loss")))
        keras.utils.set_random_seed(seed)
        model = build_model(values, dataset.input_shape, dataset.n_classes, model=spec.model, seed=seed)
        record.n_params = int(model.count_params())
        out = _range_test(model, x, y, min_lr=min_lr, max_lr=max_lr, batches=batches, batch_size=batch_size,
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
            "batches": float(len(lrs)), "batch_size": float(batch_size),
            "min_lr": float(min_lr), "max_lr": float(max_lr),
        }
        for b, (lr, loss, sm) in enumerate(zip(lrs, out["losses"], smoothed), start=1):
            for metric, value in (("lr", lr), ("loss", loss), ("smoothed_loss", sm)):
                record.history.append({"fold": 0, "epoch": b, "metric": metric, "value": float(value)})
        record.epochs = int(out["epochs"])
        notes[opt] = out["reason"]
    except Exception as exc:  # noqa: BLE001 - one optimizer failing does not stop the others
        record.status = "infeasible" if isinstance(exc, InfeasibleConfig) else "failed"
        record.error = f"{type(exc).__name__}: {exc}"[:2000]
        record.metrics = {"suggested_lr": math.nan}
    finally:
        free_memory()
    record.duration_s = time.perf_counter() - t0
    record.ended_at = time.time()
    return record
