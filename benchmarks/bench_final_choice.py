"""Which configuration should the final model train on every image: the search's best on the
subset, or the cheapest one within one standard error of it?

``strategy: auto`` on a large data set compares configurations on a subset and then trains
one of them on all training images until the budget ends (``automnist.final``).  A rule that
trained the cheapest configuration within one standard error of the best was tried with this
script and dropped (``results/README.md``, runs D and E).  This script trains each of the given
configurations exactly as that final model is trained (every training image, the
learning rate reduced on plateaus, the best validation epoch kept, stopped by the same
wall-clock allowance) one after the other, and prints their epochs and test accuracy side
by side.  The default configurations are those of the Fashion-MNIST run D in
``results/README.md``: the subset's best (``0000``, the portfolio's first: two 3x3 blocks of
64 filters) and the one-standard-error choice (``0003``: one 5x5 block of 64 filters).

    python benchmarks/bench_final_choice.py --data fashion --minutes 19.5
    python benchmarks/bench_final_choice.py --data fashion --minutes 19 \
        --configs benchmarks/final_choice_larger.json   # two larger networks of the same space
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

COMMON = {"padding": "same", "optimizer": "adam", "batch_size": 128, "loss": "sparse_categorical_crossentropy",
          "units": 128, "dropout": 0.3}
CONFIGS = {
    "0000 (subset's best)": {**COMMON, "conv_layers": 2, "filters": 64, "kernel_size": 3, "learning_rate": 1e-3},
    "0003 (one standard error)": {**COMMON, "conv_layers": 1, "filters": 64, "kernel_size": 5, "units": 64,
                                  "dropout": 0.0, "learning_rate": 0.001904767808428205},
}


def train_final(values: dict[str, Any], ds: Any, seconds: float, epochs: int) -> dict[str, Any]:
    """The final model's recipe of ``strategy: auto`` (automnist.final._train_on_all)."""
    from automnist.final import long_training
    from automnist.runner import TrialData, run_trial
    from automnist.spec import DEFAULTS

    t0 = time.time()
    record = run_trial({**DEFAULTS, **values}, TrialData.from_dataset(ds), trial_id="final", validation_split=0.1,
                       seed=0, split_seed=0, deadline=t0 + seconds, **long_training(epochs, "val_accuracy"))
    return {"epochs": record.epochs, "best_epoch": record.metrics.get("best_epoch"),
            "val": record.metrics.get("val_accuracy"), "test": record.metrics.get("test_accuracy"),
            "minutes": (time.time() - t0) / 60, "status": record.status, "error": record.error}


def main() -> None:
    from bench_search_quality import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion", help="fashion or mnist10k")
    ap.add_argument("--minutes", type=float, default=19.5, help="wall-clock allowance of each final model")
    ap.add_argument("--epochs", type=int, default=50, help="the most epochs (auto: 5x search.epochs)")
    ap.add_argument("--only", default="", help="train only the configurations whose label starts with this")
    ap.add_argument("--configs", help="a JSON file {label: configuration} instead of the defaults")
    args = ap.parse_args()
    configs = CONFIGS if not args.configs else json.loads(Path(args.configs).read_text(encoding="utf-8"))
    ds = load(args.data)
    print(f"data: {ds.name}, {len(ds.y_train)} train / {len(ds.y_test)} test, {args.minutes} min each", flush=True)
    rows = {}
    for label, values in configs.items():
        if label.startswith(args.only):
            rows[label] = train_final(values, ds, args.minutes * 60, args.epochs)
            print(f"  {label}: {rows[label]}", flush=True)
    print(f"\n{'configuration':<28}{'epochs':>7}{'best epoch':>11}{'val acc':>9}{'test acc':>9}{'minutes':>9}")
    for label, r in rows.items():
        print(f"{label:<28}{r['epochs']:>7}{r['best_epoch'] or '-':>11}{r['val'] or 0:>9.4f}{r['test'] or 0:>9.4f}"
              f"{r['minutes']:>9.1f}")


if __name__ == "__main__":
    main()
