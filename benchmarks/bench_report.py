"""How long does the HTML report of a large run take?

Writes ``--trials`` synthetic trials (5-fold CV, 10 epochs of history per fold, a few
failed and infeasible ones) of a 4-hyperparameter grid-like search straight into a
temporary store through the Store API, plus a ``predictions.npz`` of 2,000 test
digits, then times :func:`automnist.report.write_report`.

Run: ``.venv/bin/python benchmarks/bench_report.py [--trials 500] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from automnist.records import TrialRecord
from automnist.report import write_report
from automnist.runs import run_dir
from automnist.store import Store

SPEC = """\
name: bench_cnn
model: cnn
data: {dataset: digits}
params:
  kernel_size: {choice: [3, 5, 7]}
  dense_units: {int: [64, 512], step: 64}
  learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
  optimizer: {choice: [adam, sgd, rmsprop]}
search: {strategy: random, max_trials: 500, epochs: 10, cv: 5, seed: 0}
objective: val_accuracy
"""


def synthetic_trials(n: int, *, folds: int = 5, epochs: int = 10, seed: int = 0) -> list[TrialRecord]:
    """``n`` plausible trials: accuracy depends on kernel size, optimizer and learning rate."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product([3, 5, 7], range(64, 513, 64), ["adam", "sgd", "rmsprop"]))
    records = []
    for i in range(n):
        kernel, units, optimizer = combos[int(rng.integers(len(combos)))]
        lr = float(10 ** rng.uniform(-4, -2))
        params = {"kernel_size": kernel, "dense_units": units, "learning_rate": lr, "optimizer": optimizer,
                  "filters": [32, 64], "conv_layers": 2}
        status = "failed" if i % 97 == 13 else "infeasible" if i % 89 == 7 else "ok"
        base = 0.90 + 0.02 * (kernel == 3) + 0.03 * (optimizer == "adam") - 0.01 * abs(np.log10(lr) + 3)
        fold_rows, history, metrics = [], [], {}
        if status == "ok":
            scores = np.clip(base + rng.normal(0, 0.01, folds), 0, 1)
            for f, s in enumerate(scores):
                fold_rows.append({"fold": f, "val_accuracy": float(s), "val_loss": float(1 - s)})
                for e in range(1, epochs + 1):
                    progress = 1 - np.exp(-e / 3)
                    for metric, value in (("loss", 2.3 * (1 - progress) + 0.05), ("accuracy", s * progress + 0.02),
                                          ("val_loss", 2.3 * (1 - progress) + 0.1), ("val_accuracy", s * progress)):
                        history.append({"fold": f, "epoch": e, "metric": metric, "value": float(value)})
            metrics = {"val_accuracy": float(scores.mean()), "val_accuracy_std": float(scores.std(ddof=1)),
                       "val_loss": float(1 - scores.mean()), "accuracy": float(scores.mean() + 0.02),
                       "loss": 0.05, "test_accuracy": float(scores.mean() - 0.005)}
        records.append(TrialRecord(
            trial_id=f"{i:04d}", number=i, params=params, status=status, metrics=metrics, folds=fold_rows,
            history=history, duration_s=float(rng.uniform(5, 60)), n_params=int(units * 1600 + kernel * 900),
            seed=i, epochs=epochs, error=None if status == "ok" else f"{status}: synthetic error <{i}>",
            started_at=1.7e9 + i * 30.0, ended_at=1.7e9 + i * 30.0 + 25.0,
        ))
    return records


def write_predictions(directory: Path, n: int = 2000, k: int = 10, seed: int = 0) -> None:
    """A ``predictions.npz`` with the keys the report reads (8x8 images, ~90 % accurate)."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y_true] += 3.0
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = prob.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)[:64]
    images = rng.random((n, 8, 8, 1)).astype(np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        directory / "predictions.npz", y_true=y_true, y_prob=prob.astype(np.float32),
        class_names=np.asarray([str(i) for i in range(k)]), mis_images=images[wrong], mis_true=y_true[wrong],
        mis_pred=pred[wrong], sample_images=images[:32], sample_labels=y_true[:32], trial_id=np.asarray("0000"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--keep", metavar="DIR", help="write the results here and keep them")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="automnist-bench-"))
    try:
        records = synthetic_trials(args.trials)
        run = "bench-random"
        t0 = time.perf_counter()
        with Store.at(root) as store:
            store.create_run(run, spec_name="bench_cnn", spec_text=SPEC, strategy="random", dataset="digits",
                             config={"objective": {"name": "val_accuracy", "direction": "max"},
                                     "search": {"strategy": "random", "max_trials": args.trials, "epochs": 10,
                                                "cv": 5}},
                             versions={"automnist": "bench"})
            for record in records:
                store.add_trial(run, record)
            store.finish_run(run)
        t_store = time.perf_counter() - t0
        write_predictions(run_dir(root, run))
        with Store.at(root) as store:
            t1 = time.perf_counter()
            path = write_report(store, [run], results_dir=root)
            t_report = time.perf_counter() - t1
        n_history = sum(len(r.history) for r in records)
        print(f"trials: {args.trials} ({n_history} history rows, 5 folds each)")
        print(f"write store:  {t_store:.2f} s")
        print(f"write_report: {t_report:.2f} s")
        print(f"report size:  {path.stat().st_size / 1e6:.2f} MB ({path})")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
