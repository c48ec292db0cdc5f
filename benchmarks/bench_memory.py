"""Memory across trials: resident set size after each of N trials of a search.

automnist clears the Keras session and frees each model after its trial; this prints
RSS per trial for automnist's runner and, side by side, for a naive loop that builds
models without clear_session (what hand-written notebooks do), so the growth rates
can be compared.

    python benchmarks/bench_memory.py [--trials 20]
"""

from __future__ import annotations

import argparse
import os
import resource  # noqa: F401 - Linux only, like the rest of the measurements here

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()

    import keras

    from automnist.builders import build_model
    from automnist.data import load_dataset
    from automnist.runner import TrialData, run_trial
    from automnist.spec import DEFAULTS

    ds = load_dataset("digits")
    data = TrialData.from_dataset(ds)
    cfg = {**DEFAULTS, "conv_layers": 2, "filters": [32, 64], "padding": "same", "units": 128}
    ours = []
    for i in range(args.trials):
        r = run_trial({**cfg, "units": 64 + 8 * (i % 4)}, data, trial_id=str(i), epochs=1, seed=i)
        assert r.status == "ok"
        ours.append(rss_mb())
    naive = []
    y = keras.utils.to_categorical(ds.y_train, 10)
    for i in range(args.trials):
        m = build_model({**cfg, "units": 64 + 8 * (i % 4)}, ds.input_shape, 10)
        m.fit(ds.x_train, y, epochs=1, verbose=0)
        naive.append(rss_mb())
    half = args.trials // 2
    print(f"{args.trials} trials of a 2-block CNN on digits, RSS in MB after each trial")
    print("automnist runner: " + " ".join(f"{v:.0f}" for v in ours))
    print("naive loop:       " + " ".join(f"{v:.0f}" for v in naive))
    print(f"growth over the last {args.trials - half} trials: automnist {ours[-1] - ours[half - 1]:+.1f} MB, "
          f"naive {naive[-1] - naive[half - 1]:+.1f} MB")


if __name__ == "__main__":
    main()
