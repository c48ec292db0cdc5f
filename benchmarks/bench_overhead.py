"""Overhead of an automnist trial over a hand-written Keras loop, measured side by side.

Both train the same CNN (seed 000's 32/64-filter architecture, 225,034 parameters on
28x28) on the same images with the same batch size and epochs, evaluate on the same
test images.  They run in blocks, as each would in a loop of its own: ``--block`` runs of one,
then of the other, the order of the two alternating from pair to pair.  The first run of a block
is not counted: Python's garbage collector makes it pay for what the other contestant's last
run left (a hand-written loop still holds its model when it calls ``clear_session``, and the
next run, whoever it is, collects it).  Prints seconds per run and the ratio automnist /
hand-written: the median of the pairs' ratios (of the blocks' medians) with a bootstrap interval.

    python benchmarks/bench_overhead.py [--n 6000] [--epochs 2] [--repeats 12] [--block 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000, help="training images (MNIST-sized, 28x28)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=12, help="pairs of blocks")
    ap.add_argument("--block", type=int, default=3, help="runs counted per block (one more is run first)")
    args = ap.parse_args()

    import keras
    import numpy as np

    from automnist.builders import build_model
    from automnist.data import load_dataset
    from automnist.runner import TrialData, run_trial
    from automnist.spec import DEFAULTS

    try:
        ds = load_dataset("mnist", data_dir=os.path.join(os.path.dirname(__file__), "../../shared/datasets/mnist-t10k"))
    except Exception:  # noqa: BLE001 - no MNIST here: random images of the same size
        rng = np.random.default_rng(0)
        from automnist.data import Dataset

        ds = Dataset("random28", rng.random((args.n + 1000, 28, 28, 1), dtype=np.float32),
                     rng.integers(0, 10, args.n + 1000), rng.random((1000, 28, 28, 1), dtype=np.float32),
                     rng.integers(0, 10, 1000), tuple(map(str, range(10))), "random")
    n = min(args.n, len(ds.x_train))
    x, y = ds.x_train[:n], ds.y_train[:n]
    config = {**DEFAULTS, "conv_layers": 2, "filters": [32, 64], "units": 128, "dropout": 0.5,
              "batch_size": 128, "validation_split": 0.2}
    data = TrialData(x, y, ds.x_test, ds.y_test, 10)
    # The hand-written loop the reports use: validation_split=0.2, one-hot labels.
    y1 = keras.utils.to_categorical(y, 10)
    yt = keras.utils.to_categorical(ds.y_test, 10)

    def by_hand() -> float:
        t = time.perf_counter()
        keras.utils.set_random_seed(0)
        m = keras.Sequential([
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, y1, batch_size=128, epochs=args.epochs, validation_split=0.2, verbose=0)
        m.evaluate(ds.x_test, yt, verbose=0)
        keras.backend.clear_session()
        return time.perf_counter() - t

    def automnist() -> float:
        t = time.perf_counter()
        r = run_trial(config, data, trial_id="b", epochs=args.epochs, seed=0)
        assert r.status == "ok", r.error
        return time.perf_counter() - t

    assert build_model(config, (28, 28, 1), 10).count_params() == 225_034
    keras.backend.clear_session()
    by_hand(), automnist()  # warm-up: graph tracing, oneDNN kernels
    hand, ours, ratios = [], [], []
    for i in range(args.repeats):  # pairs of blocks, the order alternating so that neither always goes first
        blocks: dict[str, list[float]] = {}
        for fn in (by_hand, automnist) if i % 2 == 0 else (automnist, by_hand):
            fn()  # pays for the other contestant's garbage: not counted
            blocks[fn.__name__] = [fn() for _ in range(args.block)]
        hand += blocks["by_hand"]
        ours += blocks["automnist"]
        ratios.append(statistics.median(blocks["automnist"]) / statistics.median(blocks["by_hand"]))
    # the machine's noise (other processes, CPU frequency) moves whole runs by 10-20%: the median of the
    # paired ratios, with a bootstrap interval over the pairs, says how sure the figure is
    rng = np.random.default_rng(0)
    boot = [statistics.median(rng.choice(ratios, len(ratios))) for _ in range(2000)]
    low, high = np.percentile(boot, [2.5, 97.5])
    h, a = statistics.median(hand), statistics.median(ours)
    print(f"data: {ds.name} ({n} training images, 28x28), epochs={args.epochs}, batch=128, pairs={args.repeats} "
          f"of blocks of {args.block} runs (after one not counted)")
    print(f"hand-written Keras loop: median {h:.2f} s, min {min(hand):.2f} s  ({', '.join(f'{v:.2f}' for v in hand)})")
    print(f"automnist run_trial:     median {a:.2f} s, min {min(ours):.2f} s  ({', '.join(f'{v:.2f}' for v in ours)})")
    print(f"paired ratios automnist / hand-written: {', '.join(f'{r:.3f}' for r in ratios)}")
    # the minimum is the least disturbed run of each (timeit's rule); the medians are shown too
    print(f"ratio automnist / hand-written: {statistics.median(ratios):.3f} (median of the pairs, 95% bootstrap "
          f"interval {low:.3f}-{high:.3f}), {min(ours) / min(hand):.3f} (of the minima), {a / h:.3f} (of the medians)")


if __name__ == "__main__":
    main()
