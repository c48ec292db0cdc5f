"""TensorBoard (``--tensorboard DIR``) and MLflow (``automnist export RUN --to mlflow``)
bridges (issue 13), read back with the tools' own readers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from polish_runs import PolishRuns  # the polish_runs fixture: tests/conftest.py

from automnist.store import Store


def _events(directory: Path) -> list[object]:
    import tensorflow as tf

    files = sorted(directory.glob("events.out.tfevents.*"))
    assert files, f"no event file in {directory}"
    return [e for f in files for e in tf.compat.v1.train.summary_iterator(str(f))]


def _hparams_plugin(event: object) -> object | None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    for v in event.summary.value:
        if v.metadata.plugin_data.plugin_name == "hparams":
            return plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
    return None


def test_tensorboard_holds_each_trial_with_its_hparams_and_epochs(polish_runs: PolishRuns):
    import tensorflow as tf

    run_dir = polish_runs.tensorboard / "first"
    config = [p for p in map(_hparams_plugin, _events(run_dir)) if p is not None]
    assert len(config) == 1
    experiment = config[0].experiment
    assert [h.name for h in experiment.hparam_infos] == ["kernel_size"]
    assert sorted(v.number_value for v in experiment.hparam_infos[0].domain_discrete.values) == [3, 9]
    assert "val_accuracy" in [m.name.tag for m in experiment.metric_infos]

    with Store.at(polish_runs.results) as store:
        records = {t.trial_id: t for t in store.get_trials("first")}
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == sorted(records)
    for trial_id, record in records.items():
        events = _events(run_dir / trial_id)
        starts = [p.session_start_info for p in map(_hparams_plugin, events) if p is not None]
        assert len(starts) == 1 and starts[0].group_name == f"first/{trial_id}"
        assert starts[0].hparams["kernel_size"].number_value == record.params["kernel_size"]
        scalars: dict[str, dict[int, float]] = {}
        for e in events:
            for v in e.summary.value:
                if v.metadata.plugin_data.plugin_name == "scalars":
                    scalars.setdefault(v.tag, {})[e.step] = float(tf.make_ndarray(v.tensor))
        expected: dict[str, dict[int, float]] = {}
        for row in record.history:
            expected.setdefault(row["metric"], {})[row["epoch"]] = row["value"]
        if record.status == "ok":
            assert set(expected) >= {"loss", "accuracy", "val_loss", "val_accuracy"} and len(expected["loss"]) == 2
            for metric, by_epoch in expected.items():
                assert scalars[metric] == pytest.approx(by_epoch), metric
            assert scalars["test_accuracy"] == {max(expected["loss"]): pytest.approx(record.metrics["test_accuracy"])}
        else:  # the infeasible 9x9 convolution: its hyperparameters, no epochs
            assert record.status == "infeasible" and expected == {} and scalars == {}


def test_mlflow_export_round_trip(polish_runs: PolishRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import mlflow

    from automnist.cli import main

    uri = (tmp_path / "mlruns").as_uri()
    args = ["export", "first", "--to", "mlflow", "--tracking-uri", uri, "--results", str(polish_runs.results)]
    assert main(args) == 0
    assert "2 trials logged, 0 already there; best model logged as an artifact" in capsys.readouterr().out
    assert main(args) == 0  # again: nothing logged twice
    assert "0 trials logged, 2 already there" in capsys.readouterr().out

    with Store.at(polish_runs.results) as store:
        records = {t.trial_id: t for t in store.get_trials("first")}
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        frame = mlflow.search_runs(experiment_names=["first"])
    finally:
        mlflow.set_tracking_uri(previous)
    assert len(frame) == 2
    client = mlflow.MlflowClient(tracking_uri=uri)
    for data in frame.to_dict("records"):
        record = records[data["tags.automnist.trial_id"]]
        assert data["params.kernel_size"] == str(record.params["kernel_size"])
        assert data["params.padding"] == "valid"
        assert data["tags.automnist.status"] == record.status
        assert data["status"] == ("FINISHED" if record.status == "ok" else "FAILED")
        history = client.get_metric_history(data["run_id"], "val_accuracy")
        expected = {r["epoch"]: r["value"] for r in record.history if r["metric"] == "val_accuracy"}
        assert {m.step: m.value for m in history} == pytest.approx(expected)
        artifacts = [a.path for a in client.list_artifacts(data["run_id"])]
        if record.status == "ok":
            assert data["metrics.test_accuracy"] == pytest.approx(record.metrics["test_accuracy"])
            assert artifacts == ["best.keras"]
        else:
            assert "9x9" in data["tags.automnist.error"] and artifacts == []


def test_export_without_mlflow_says_so_in_one_line(polish_runs: PolishRuns, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]):
    from automnist.cli import main

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: `import mlflow` raises ImportError
    code = main(["export", "first", "--to", "mlflow", "--results", str(polish_runs.results)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("automnist: error: mlflow is not installed; install it with")
