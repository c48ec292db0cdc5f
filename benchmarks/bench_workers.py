"""Trials per hour with 1, 2 (and, with >= 4 cores, 4) worker processes on the digits demo
space, measured side by side in one run, and the per-trial coordination overhead (one
oracle round trip over gRPC + one store write) against the trial time.

Each worker count runs ``automnist search search_spaces/demo.yaml --workers N`` to its end
in a fresh results folder.  Trials/hour counts the search itself (the first trial's start to
the last trial's end, from the store); the wall time with the processes' start-up
(TensorFlow imports, data loading) and its trials/hour are printed beside it.

    python benchmarks/bench_workers.py [--trials 12] [--epochs 2] [--subset 600]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).parents[1]
DEMO = ROOT / "search_spaces" / "demo.yaml"


def _search(n: int, args: argparse.Namespace, results: Path) -> dict[str, float]:
    from automnist.store import Store

    cmd = [sys.executable, "-m", "automnist", "search", str(DEMO), "--workers", str(n), "--max-trials",
           str(args.trials), "--epochs", str(args.epochs), "--subset", str(args.subset), "--results", str(results),
           "--run-name", f"w{n}", "--quiet", "--no-report"]
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    with Store.at(results) as store:
        run = store.get_run(f"w{n}")
        trials = store.get_trials(f"w{n}")
    assert run["status"] == "finished", run["status"]
    search = max(t.ended_at for t in trials) - min(t.started_at for t in trials)
    return {"workers": n, "trials": len(trials), "search_s": search, "wall_s": wall,
            "per_hour": len(trials) / search * 3600, "wall_per_hour": len(trials) / wall * 3600,
            "trial_s": statistics.mean(t.duration_s for t in trials)}


def _oracle_round_trip(k: int) -> float:
    """Mean ms of create_trial + update_trial + end_trial from a client to a served oracle."""
    import keras_tuner as kt
    from keras_tuner.src.distribute import oracle_client
    from keras_tuner.src.distribute.oracle_client import OracleClient

    from automnist.scale.pool import free_port
    from automnist.scale.roles import WORKER, Role, enter_role, serve_oracle
    from automnist.space import declare
    from automnist.spec import load_spec
    from automnist.strategies.keras_tuner import make_oracle

    spec = load_spec(DEMO).replace(max_trials=k + 1)
    hp = kt.HyperParameters()
    declare(hp, spec)
    with tempfile.TemporaryDirectory() as tmp:
        oracle = make_oracle(spec, hp)
        oracle.verbose = 0
        oracle._set_project_dir(tmp, "bench")
        port = free_port()
        chief = Role("chief", "chief", "127.0.0.1", port)
        server = threading.Thread(target=serve_oracle, args=(oracle, chief), daemon=True)
        server.start()
        enter_role(WORKER, f"127.0.0.1:{port}", "bench")
        oracle_client.TIMEOUT = 60  # fail rather than wait an hour for a server that did not start
        client = OracleClient(make_oracle(spec, hp))
        client.get_space()  # waits for the server
        times = []
        with contextlib.redirect_stdout(io.StringIO()):  # Keras Tuner's display prints each trial's values
            for _ in range(k):
                t = time.perf_counter()
                trial = client.create_trial("bench")
                client.update_trial(trial.trial_id, {"val_accuracy": 0.5})
                trial.status = "COMPLETED"
                client.end_trial(trial)
                times.append(time.perf_counter() - t)
            client.create_trial("bench")  # STOPPED: the server ends
            server.join(timeout=10)
    return 1000 * statistics.mean(times)


def _store_write(results: Path, run: str, k: int) -> float:
    """Mean ms of writing one of ``run``'s trials (folds and history included) to a new run."""
    import dataclasses

    from automnist.store import Store

    with Store.at(results) as store:
        record = store.get_trials(run)[0]
        store.create_run("bench-write", kind="search", spec_name="bench", spec_text="", spec_hash="0",
                         strategy="random", dataset="digits", seed=0)
        times = []
        for i in range(k):
            t = time.perf_counter()
            store.add_trial("bench-write", dataclasses.replace(record, trial_id=f"b{i}", number=i))
            times.append(time.perf_counter() - t)
    return 1000 * statistics.mean(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--subset", type=int, default=600)
    ap.add_argument("--round-trips", type=int, default=50)
    args = ap.parse_args()
    counts = [1, 2] + ([4] if (os.cpu_count() or 1) >= 4 else [])
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in counts:
            rows.append(_search(n, args, Path(tmp) / f"w{n}"))
            print(f"{n} worker(s): {rows[-1]['trials']} trials in {rows[-1]['search_s']:.1f} s", flush=True)
        oracle_ms = _oracle_round_trip(args.round_trips)
        store_ms = _store_write(Path(tmp) / "w1", "w1", args.round_trips)
    print(f"digits demo space, {args.trials} trials x {args.epochs} epochs on {args.subset} images, "
          f"{os.cpu_count()} cores")
    print(f"{'workers':>7}  {'trials':>6}  {'search s':>8}  {'trials/h':>8}  {'speed-up':>8}  {'wall s':>7}  "
          f"{'wall trials/h':>13}  {'mean trial s':>12}")
    for r in rows:
        print(f"{r['workers']:>7}  {r['trials']:>6}  {r['search_s']:8.1f}  {r['per_hour']:8.0f}  "
              f"{r['per_hour'] / rows[0]['per_hour']:7.2f}x  {r['wall_s']:7.1f}  {r['wall_per_hour']:13.0f}  "
              f"{r['trial_s']:12.2f}")
    trial_ms = 1000 * rows[0]["trial_s"]
    print(f"coordination per trial: oracle round trip {oracle_ms:.1f} ms + store write {store_ms:.1f} ms = "
          f"{oracle_ms + store_ms:.1f} ms, {100 * (oracle_ms + store_ms) / trial_ms:.2f}% of a "
          f"{trial_ms / 1000:.2f} s trial")


if __name__ == "__main__":
    main()
