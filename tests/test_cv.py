"""k-fold cross-validation of one configuration (automnist.experiments.cv)."""

from __future__ import annotations

import numpy as np
import pytest

from automnist.experiments.cv import _best_params_of_run, cross_validate_spec
from automnist.records import TrialRecord
from automnist.spec import parse_spec
from automnist.store import Store


def test_cross_validate_spec_stores_one_cv_trial_with_its_folds(tmp_path):
    spec = parse_spec({
        "name": "cv-test", "model": "mlp", "data": {"dataset": "digits", "subset": 300},
        "params": {"units": {"choice": [16, 32]}, "learning_rate": 0.01},
        "search": {"epochs": 1, "seed": 0},
    })
    result = cross_validate_spec(spec, folds=3, results_dir=tmp_path, run_name="cv3")
    record = result.trials[0]
    assert result.best is record and record.status == "ok" and record.params["units"] == 16
    scores = [f["val_accuracy"] for f in record.folds]
    assert [f["fold"] for f in record.folds] == [0, 1, 2]
    assert record.metrics["val_accuracy"] == pytest.approx(np.mean(scores))
    assert record.metrics["val_accuracy_std"] == pytest.approx(np.std(scores, ddof=1))
    assert 0.0 <= record.metrics["test_accuracy"] <= 1.0
    with Store.at(tmp_path) as store:
        run = store.get_run("cv3")
        folds = store.folds_frame("cv3")
    assert run["kind"] == "cv" and run["status"] == "finished" and run["strategy"] == "3-fold"
    assert folds["fold"].tolist() == [0, 1, 2] and folds["val_accuracy"].tolist() == pytest.approx(scores)
    again = cross_validate_spec(spec, folds=2, params={"units": 32}, results_dir=tmp_path, run_name="cv2")
    assert again.trials[0].params["units"] == 32 and len(again.trials[0].folds) == 2
    with pytest.raises(ValueError, match="parameter folds: must be an integer >= 2, got 1"):
        cross_validate_spec(spec, folds=1, results_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        cross_validate_spec(spec, params={"unit": 3}, results_dir=tmp_path)


def test_from_run_takes_the_best_successful_trial_by_the_objective(tmp_path):
    raw = {"name": "cv-best", "model": "mlp", "params": {"units": {"choice": [8, 16, 32]}}}
    spec = parse_spec(raw)
    trials = [
        TrialRecord("0", 0, {"units": 8}, metrics={"val_accuracy": 0.8, "val_loss": 0.4}),
        TrialRecord("1", 1, {"units": 16}, metrics={"val_accuracy": 0.9, "val_loss": 0.5}),
        TrialRecord("2", 2, {"units": 32}, status="failed", metrics={"val_accuracy": 0.95}, error="boom"),
    ]
    with Store.at(tmp_path) as store:
        for name, records in (("searched", trials), ("all-failed", trials[2:])):
            store.create_run(name, spec_name=spec.name)
            for record in records:
                store.add_trial(name, record)
        assert _best_params_of_run(store, "searched", spec)["units"] == 16
        by_loss = parse_spec({**raw, "objective": "val_loss"})
        assert _best_params_of_run(store, "searched", by_loss)["units"] == 8
        with pytest.raises(ValueError, match="from_run: run 'all-failed' has no successful trial with a val_accuracy"):
            _best_params_of_run(store, "all-failed", spec)
