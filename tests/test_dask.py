"""scikit-learn strategies on a real Dask ``LocalCluster`` (2 worker processes): the stored
scores equal the serial run's for the same seeds (without :class:`PrivateRandom` they do not:
Dask's threads draw from the generator Keras takes its default seeds from)."""

from __future__ import annotations

import pytest

from automnist.errors import SpecError
from automnist.scale.dask import dask_backend
from automnist.search import run_search
from automnist.spec import parse_spec
from automnist.store import Store

RAW = {
    "name": "tiny-dask",
    "model": "cnn",
    "data": {"dataset": "digits", "subset": 240},
    "params": {"conv_layers": 1, "filters": 8, "padding": "same", "units": {"choice": [16, 32]},
               "learning_rate": {"float": [1e-3, 3e-2], "log": True}},
    "search": {"strategy": "sklearn-random", "n_iter": 3, "cv": 2, "epochs": 1, "seed": 0},
}


def _scores(results, run: str) -> dict[str, tuple]:
    with Store.at(results) as store:
        trials = store.get_trials(run)
    return {t.trial_id: (t.params, t.status, [(f["fold"], f["val_accuracy"], f["val_loss"]) for f in t.folds])
            for t in trials}


@pytest.mark.serial
@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_scores(tmp_path):
    from distributed import LocalCluster, get_task_stream

    spec = parse_spec(RAW)
    run_search(spec, results_dir=tmp_path, run_name="serial", progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with dask_backend("local", spec.search.strategy, cluster=cluster) as client, \
                get_task_stream(client) as stream:
            run_search(spec.replace(n_jobs=-1), results_dir=tmp_path, run_name="dask", progress=False)
    assert len({task["worker"] for task in stream.data}) == 2  # the 6 fits ran on both worker processes
    serial, dask = _scores(tmp_path, "serial"), _scores(tmp_path, "dask")
    assert len(serial) == 3 and all(s[1] == "ok" for s in serial.values())
    assert dask == serial


def test_dask_option_needs_a_scikit_learn_strategy_and_a_scheduler():
    with pytest.raises(SpecError, match="--dask: needs strategy sklearn-grid, sklearn-random, sklearn-halving"):
        with dask_backend("local", "random"):
            pass
    with pytest.raises(SpecError, match="--dask: cannot reach a Dask scheduler"):
        with dask_backend("tcp://127.0.0.1:1", "sklearn-grid", timeout=1):
            pass
