"""Can the final model's phase train more epochs per minute on these cores?  Side by side.

``strategy: auto``'s final phase on a large data set trains one model after another
(``automnist.final``: the first model on every image, then more members for the ensemble), each
in one process with TensorFlow's default threads.  Two ways to get more epochs per wall-clock
minute out of the same cores are measured here on the same network and images:

- ``one process``: as automnist trains (Keras' default ``steps_per_execution=1``);
- ``steps_per_execution=16``: 16 batches per call into the compiled step, less Python per batch;
- ``two processes``: two models trained at once, each process with one TensorFlow thread, as
  two members of an ensemble could be (epochs per minute counted over both).

Each trains ``--epochs`` epochs after a short warm-up (graph tracing not counted); the ways run in
turn, ``--rounds`` times, as the machine's speed drifts, and the script prints the medians of the
rounds' seconds per epoch and epochs per minute of every way, with the ratio to the first.

    python benchmarks/bench_throughput.py [--data fashion] [--epochs 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent

#: The network ``strategy: auto`` kept on Fashion-MNIST in every run of results/README.md (``0000``).
CONFIG = {"conv_layers": 2, "filters": 64, "kernel_size": 3, "padding": "same", "units": 128, "dropout": 0.3,
          "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "loss": "sparse_categorical_crossentropy"}


def train(data: str, epochs: int, threads: int, steps_per_execution: int) -> list[float]:
    """Seconds of each of ``epochs`` epochs of :data:`CONFIG` on 90% of ``data``'s training images."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    from automnist.builders import build_model, make_optimizer
    from automnist.spec import DEFAULTS
    sys.path.insert(0, str(HERE))
    from bench_search_quality import load

    ds = load(data)
    n = int(0.9 * len(ds.y_train))
    x, y = ds.x_train[:n], ds.y_train[:n]
    values = {**DEFAULTS, **CONFIG}
    keras.utils.set_random_seed(0)
    model = build_model(values, input_shape=x.shape[1:], n_classes=10, compile=False)
    model.compile(optimizer=make_optimizer(values), loss=values["loss"], metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    model.fit(x[:2560], y[:2560], batch_size=128, epochs=1, verbose=0)  # tracing, not counted
    seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - t0)
    return seconds


def child(args: argparse.Namespace, threads: int, spe: int) -> subprocess.Popen:
    """This script again, training one model in a fresh process (:func:`train`), its seconds printed as JSON."""
    cmd = [sys.executable, __file__, "--data", args.data, "--epochs", str(args.epochs), "--child",
           json.dumps([threads, spe])]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def results(procs: list[subprocess.Popen]) -> list[list[float]]:
    """Each process's seconds per epoch, once it has ended."""
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a training process failed (exit {p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion", help="fashion, mnist10k or digits (bench_search_quality.load)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed per model")
    ap.add_argument("--rounds", type=int, default=3, help="times each way runs, in turn (the machine's speed drifts)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        threads, spe = json.loads(args.child)
        print(json.dumps(train(args.data, args.epochs, threads, spe)), flush=True)
        return
    ways = {"one process": ([(0, 1)], 1), "steps_per_execution=16": ([(0, 16)], 1),
            "two processes, 1 thread each": ([(1, 1), (1, 1)], 2)}
    rates: dict[str, list[float]] = {label: [] for label in ways}
    seconds: dict[str, list[float]] = {label: [] for label in ways}
    for r in range(args.rounds):  # the ways in turn, each in fresh processes, so none pays for another's leftovers
        for label, (procs, models) in ways.items():
            per_model = results([child(args, threads, spe) for threads, spe in procs])
            mean = sum(sum(s) for s in per_model) / sum(len(s) for s in per_model)
            seconds[label].append(mean)
            rates[label].append(models * 60.0 / mean)
            print(f"  round {r + 1}, {label}: {mean:.1f} s per epoch, {rates[label][-1]:.2f} epochs per minute",
                  flush=True)
    print(f"\n{args.data}, {CONFIG['conv_layers']} blocks of {CONFIG['filters']} filters, batch 128, "
          f"{args.epochs} epochs per model, {args.rounds} rounds, {os.cpu_count()} cores (medians of the rounds)")
    print(f"{'way':<32}{'s per epoch (each model)':>26}{'epochs per minute':>19}{'vs one process':>16}")
    base = statistics.median(rates["one process"])
    for label in ways:
        rate = statistics.median(rates[label])
        print(f"{label:<32}{statistics.median(seconds[label]):>26.1f}{rate:>19.2f}{rate / base:>15.2f}x")

if __name__ == "__main__":
    main()
