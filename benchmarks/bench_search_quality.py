"""Search quality per CPU-minute: automnist against the Keras Tuner script a user writes by hand.

Same machine, same data, same space, same wall budget, run one after the other in one
process (never at the same time).  The peer is the ~40-line script from Keras Tuner's
documentation: ``kt.RandomSearch`` over the same CNN space, 5 epochs per trial, batch 128,
10% validation, stopped at the budget.  automnist runs ``strategy: auto`` (and, with
``--contestants``, any Keras Tuner strategy) with ``epochs: 10`` and the same budget,
the time to load the data and to train the final model included.

For each contestant it prints: trials, epochs trained in all, the best validation score,
the test accuracy of the kept model (and of the ensemble, which ``strategy: auto`` keeps when it
has more than one member; ``--ensemble K`` sets its candidates), the
minutes it took, and the minutes it took to first keep a model at least as accurate on
the test set as the peer's final one (the kept model at a moment: the best trial so far
by the search's own rule; the test set never chooses anything).

    python benchmarks/bench_search_quality.py --data mnist10k --budget 600
    python benchmarks/bench_search_quality.py --data fashion10k --budget 600
    python benchmarks/bench_search_quality.py --data fashion --budget 1800 --contestants auto,peer
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
MNIST_T10K = HERE.parent.parent / "shared" / "datasets" / "mnist-t10k"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist

#: The README's kind of CNN space, as an automnist spec (the peer's build_model is the same space).
SPACE = {
    "conv_layers": {"choice": [1, 2, 3]},
    "filters": {"choice": [32, 64, 128]},
    "kernel_size": {"choice": [3, 5]},
    "padding": "same",
    "units": {"choice": [64, 128, 256]},
    "dropout": {"float": [0.0, 0.5], "step": 0.1},
    "optimizer": "adam",
    "learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True},
    "batch_size": 128,
    "loss": "sparse_categorical_crossentropy",
}


def load(name: str) -> Any:
    from automnist.data import load_dataset

    if name == "mnist10k":  # the real MNIST test set, split 80/20 stratified with a fixed seed
        return load_dataset("mnist", data_dir=str(MNIST_T10K))
    if name == "fashion":
        return load_dataset("fashion_mnist")
    if name == "fashion10k":  # Fashion-MNIST's test set alone, split 80/20 like MNIST-10k: small and harder
        return load_dataset("fashion_mnist", data_dir=str(_t10k_only(FASHION_DIR)))
    if name == "digits":  # a smoke test of this script, not a benchmark
        return load_dataset("digits", image_size=(28, 28))
    raise SystemExit(f"--data: mnist10k, fashion or fashion10k, got {name!r}")


def _t10k_only(directory: Path) -> Path:
    """A folder holding only ``directory``'s t10k IDX files (links), so they are read as the whole data set."""
    here = Path(tempfile.mkdtemp(prefix="t10k-"))
    for f in directory.glob("t10k-*"):
        (here / f.name).symlink_to(f)
    return here


def _race_epochs(final: dict[str, Any]) -> int:
    """The epochs the final model's race spent on the configurations that did not go on."""
    race = final.get("race") or {}
    return int(race.get("epochs") or 0) * max(0, len(race.get("scores") or {}) - 1)


class Snapshots:
    """Copies of a run's ``best.keras`` each time it changes (polled every ``every`` seconds, in a
    thread that only copies files): the model a user would find there at that moment."""

    def __init__(self, model: Path, into: Path, t0: float, every: float = 2.0) -> None:
        self.model, self.into, self.t0, self.every = model, into, t0, every
        self.copies: list[tuple[float, Path]] = []  # (minutes, copy)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        into.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def _poll(self) -> None:
        seen = None
        while not self._stop.wait(self.every):
            try:
                mtime = self.model.stat().st_mtime
                if mtime != seen:
                    copy = self.into / f"{len(self.copies)}.keras"
                    shutil.copy2(self.model, copy)  # best.keras is replaced whole (os.replace), never half written
                    seen = mtime  # replaced meanwhile: the next poll sees a newer one and copies it
                    # the time stamped on the copy (read after it, so never earlier than its content)
                    self.copies.append(((copy.stat().st_mtime - self.t0) / 60, copy))
            except FileNotFoundError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def timeline(self, ds: Any) -> list[tuple[float, float]]:
        """(minutes, test accuracy) of every copy, tested now that the run is over."""
        from automnist.predict import load_classifier

        out = []
        for minutes, copy in self.copies:
            model = load_classifier(copy)[0]
            prob = model.predict(ds.x_test, batch_size=512, verbose=0)
            out.append((minutes, float((prob.argmax(axis=1) == ds.y_test).mean())))
        return out


def run_automnist(strategy: str, ds: Any, budget: float, seed: int, ensemble: int | None,
                  results: Path) -> dict[str, Any]:
    from automnist.ensemble import ensemble_summary
    from automnist.records import ranked_trials
    from automnist.runs import run_dir
    from automnist.search import run_search
    from automnist.spec import parse_spec

    search: dict[str, Any] = {"strategy": strategy, "epochs": 10, "time_budget": budget, "seed": seed}
    if strategy != "auto":
        search["max_trials"] = 1000
    raw = {"name": f"bench-{strategy}", "data": {"dataset": ds.name, "validation_split": 0.1},
           "params": SPACE, "search": search}
    if ensemble is not None:
        raw["final"] = {"ensemble": ensemble}
    spec = parse_spec(raw)
    t0 = time.time()
    name = f"{strategy}-{int(t0)}"
    snapshots = Snapshots(run_dir(results, name) / "best.keras", results / f"{name}-snapshots", t0)
    try:
        result = run_search(spec, results_dir=results, run_name=name, dataset=ds, progress=False)
    finally:
        snapshots.stop()
    minutes = (time.time() - t0) / 60
    timeline = []  # (minutes, test accuracy of the model kept then)
    for i, t in enumerate(sorted(result.trials, key=lambda t: t.ended_at)):
        done = [r for r in result.trials if r.ended_at <= t.ended_at]
        best = ranked_trials(done, spec.objective.name, spec.objective.direction)
        if best and best[0].metrics.get("test_accuracy") is not None:
            timeline.append(((t.ended_at - t0) / 60, best[0].metrics["test_accuracy"]))
    timeline = sorted(timeline + snapshots.timeline(ds))  # the final models are best.keras before the end
    kept = result.best.metrics.get("test_accuracy") if result.best else None
    refit, ens = result.final.get("refit"), result.final.get("ensemble") or {}
    if ens.get("kept"):  # best.keras is the ensemble chosen on the validation images
        kept = ens["test_accuracy"]
        timeline.append((minutes, kept))
    elif refit and refit.get("kept"):
        kept = refit["test_accuracy"]
        timeline.append((minutes, kept))
    images = sorted({t.images for t in result.trials if t.status == "ok" and t.images})
    return {
        "trials": sum(1 for t in result.trials if t.status == "ok"),  # trained (proposals skipped as too costly apart)
        "images": images,  # training images a trial saw (a subset on a large data set)
        "final": refit or {},
        "skipped": sum(1 for t in result.trials if t.status == "infeasible" and t.stop_reason == "budget"),
        "epochs": sum(1 for t in result.trials for h in t.history if h["metric"] == "loss")
        + int((refit or {}).get("epochs") or 0) + _race_epochs(refit or {})  # the final models' epochs count too
        + sum(int(m.get("epochs") or 0) for m in (refit or {}).get("members") or []),
        "best_val": result.best.metrics.get("val_accuracy") if result.best else None,
        "test": kept,
        "ensemble": ens.get("test_accuracy"),
        "ensemble_note": ensemble_summary(ens) if ens.get("members") else None,
        "minutes": minutes,
        "timeline": timeline,
    }


def run_peer(ds: Any, budget: float, seed: int, directory: Path) -> dict[str, Any]:
    """The script a user writes from Keras Tuner's documentation (plus a wall-clock stop)."""
    import keras
    import keras_tuner as kt
    import numpy as np

    t0 = time.time()
    deadline = t0 + budget

    def build_model(hp: Any) -> Any:
        model = keras.Sequential([keras.Input(ds.x_train.shape[1:])])
        filters, kernel = hp.Choice("filters", [32, 64, 128]), hp.Choice("kernel_size", [3, 5])
        for _ in range(hp.Int("conv_blocks", 1, 3)):
            model.add(keras.layers.Conv2D(filters, kernel, padding="same", activation="relu"))
            model.add(keras.layers.MaxPooling2D())
        model.add(keras.layers.Flatten())
        model.add(keras.layers.Dense(hp.Choice("units", [64, 128, 256]), activation="relu"))
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
        model.add(keras.layers.Dense(10, activation="softmax"))
        lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    trained = {"epochs": 0}

    class StopAtBudget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            trained["epochs"] += 1  # counted by the benchmark, not part of the user's script
            if time.time() >= deadline:
                self.model.stop_training = True

    class BudgetOracle(kt.oracles.RandomSearchOracle):
        def populate_space(self, trial_id: str) -> dict[str, Any]:
            if time.time() >= deadline:
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            return super().populate_space(trial_id)

    ended: dict[str, float] = {}

    class Tuner(kt.Tuner):  # kt.RandomSearch is kt.Tuner with a RandomSearchOracle
        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            ended[trial.trial_id] = time.time()

    tuner = Tuner(oracle=BudgetOracle(objective="val_accuracy", max_trials=1000, seed=seed), hypermodel=build_model,
                  directory=str(directory), project_name="peer", overwrite=True)
    tuner.search(ds.x_train, ds.y_train, epochs=5, batch_size=128, validation_split=0.1,
                 callbacks=[StopAtBudget()], verbose=0)
    minutes = (time.time() - t0) / 60
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    best = tuner.get_best_models(1)[0]
    _, test = best.evaluate(ds.x_test, ds.y_test, batch_size=512, verbose=0)
    timeline = []  # after the fact: each trial's checkpoint, tested, in the order trials ended
    best_val, acc = -1.0, 0.0
    for trial in sorted(trials, key=lambda t: ended.get(t.trial_id, 0)):
        val = trial.score if trial.score is not None else -1.0
        if val > best_val:
            best_val = val
            model = tuner.load_model(trial)
            acc = float(model.evaluate(ds.x_test, ds.y_test, batch_size=512, verbose=0)[1])
            keras.backend.clear_session()
        timeline.append(((ended.get(trial.trial_id, time.time()) - t0) / 60, acc))
    return {"trials": len(trials), "epochs": trained["epochs"], "best_val": float(np.max([t.score for t in trials])),
            "test": float(test), "ensemble": None, "minutes": minutes, "timeline": timeline}


def first_reach(timeline: list[tuple[float, float]], target: float) -> float | None:
    return next((m for m, acc in timeline if acc >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist10k",
                    help="mnist10k (real MNIST test set, 80/20), fashion10k (Fashion-MNIST test set, 80/20) or fashion")
    ap.add_argument("--budget", type=float, default=600, help="seconds per contestant")
    ap.add_argument("--contestants", default="auto,peer", help="comma list of peer, auto, random, bayesian, hyperband")
    ap.add_argument("--ensemble", type=int, default=None,
                    help="automnist: final.ensemble, the ensemble's candidates (default: the strategy's; 1: none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from automnist.final import members_summary, race_summary

    ds = load(args.data)
    print(f"data: {ds.name}, {len(ds.y_train)} train / {len(ds.y_test)} test images, budget {args.budget / 60:.1f} "
          f"min per contestant, {os.cpu_count()} cores", flush=True)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.contestants.split(","):
            if name == "peer":
                rows[name] = run_peer(ds, args.budget, args.seed, Path(tmp) / "peer")
            else:
                rows[name] = run_automnist(name, ds, args.budget, args.seed, args.ensemble, Path(tmp) / "results")
            r = rows[name]
            skipped = f" (+{r['skipped']} proposals skipped as too costly)" if r.get("skipped") else ""
            print(f"  {name}: {r['trials']} trials{skipped}, test {r['test']:.4f}, {r['minutes']:.1f} min", flush=True)
            if r.get("images"):
                f = r["final"]
                print(f"    trials trained on {'/'.join(map(str, r['images']))} images; final model: "
                      f"{f.get('epochs', 0)} epochs on {f.get('images')} images, test {f.get('test_accuracy')}, "
                      f"{'kept' if f.get('kept') else 'not kept: ' + str(f.get('error'))}", flush=True)
                for line in (f.get("search_ended"), race_summary(f), members_summary(f), r.get("ensemble_note")):
                    if line:
                        print(f"    {line}", flush=True)
    peer = rows.get("peer", {}).get("test")
    print(f"\n{'contestant':<18}{'trials':>7}{'epochs':>8}{'best val':>10}{'test acc':>10}{'ensemble':>10}"
          f"{'minutes':>9}{'to peer':>9}")
    for name, r in rows.items():
        label = "Keras Tuner script" if name == "peer" else f"automnist {name}"
        reach = first_reach(r["timeline"], peer) if peer is not None else None
        ens = "-" if r["ensemble"] is None else f"{r['ensemble']:.4f}"
        print(f"{label:<18}{r['trials']:>7}{r['epochs']:>8}{r['best_val']:>10.4f}{r['test']:>10.4f}{ens:>10}"
              f"{r['minutes']:>9.1f}{'-' if reach is None else f'{reach:.1f}':>9}")


if __name__ == "__main__":
    main()
