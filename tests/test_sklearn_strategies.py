"""scikit-learn strategies (grid, random, halving) end to end on tiny digits, through run_search."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from automnist.errors import SpecError
from automnist.search import run_search
from automnist.spec import DEFAULTS, parse_spec
from automnist.store import Store
from automnist.strategies import get_strategy
from automnist.strategies.sklearn import planned_trials

BASE = {
    "model": "cnn",
    "data": {"dataset": "digits", "subset": 300},
    "params": {
        "conv_layers": 1,
        "filters": 8,
        "padding": "same",
        "units": {"choice": [16, 32]},
        "learning_rate": {"choice": [0.003, 0.01]},
    },
    "search": {"max_trials": 3, "epochs": 2, "seed": 0},
}


def _spec(strategy: str, params: dict | None = None, **search):
    raw = {**BASE, "name": f"tiny-{strategy}", "search": {**BASE["search"], "strategy": strategy, **search}}
    if params is not None:
        raw["params"] = {**BASE["params"], **params}
    return parse_spec(raw)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """An sklearn-grid run (3-fold CV) and a Keras Tuner random run with search.cv=3, one store."""
    results = tmp_path_factory.mktemp("grid")
    spec = _spec("sklearn-grid", cv=3)
    result = run_search(spec, results_dir=results, run_name="grid", progress=False)
    kt = _spec("random", cv=3, max_trials=1, epochs=1)
    run_search(kt, results_dir=results, run_name="kt", progress=False)
    with Store.at(results) as store:
        frames = {run: (store.trials_frame(run), store.folds_frame(run)) for run in ("grid", "kt")}
        runs = store.runs_frame().set_index("run")
    return spec, result, frames, runs, results


@pytest.mark.slow
def test_grid_records_one_trial_per_candidate_with_fold_scores(grid_run):
    spec, result, frames, runs, results = grid_run
    trials, folds = frames["grid"]
    # max_trials=3 caps the 2x2 grid at its first three points, in ParameterGrid order
    assert trials["trial_id"].tolist() == ["0000", "0001", "0002"] and trials["number"].tolist() == [0, 1, 2]
    assert list(zip(trials["param_learning_rate"], trials["param_units"])) == [(0.003, 16), (0.003, 32), (0.01, 16)]
    assert (trials["status"] == "ok").all() and (trials["n_folds"] == 3).all() and (trials["epochs"] == 2).all()
    assert runs.loc["grid", "strategy"] == "sklearn-grid" and runs.loc["grid", "status"] == "finished"
    assert planned_trials(spec) == 3
    for _, row in trials.iterrows():
        fold = folds[folds.trial_id == row.trial_id].sort_values("fold")
        assert fold["fold"].tolist() == [0, 1, 2]
        assert fold["val_accuracy"].between(0, 1).all() and (fold["val_loss"] > 0).all()
        assert row.val_accuracy == pytest.approx(fold["val_accuracy"].mean())
        assert row.val_accuracy_std == pytest.approx(fold["val_accuracy"].std(ddof=1))
        assert row.val_loss == pytest.approx(fold["val_loss"].mean())
        assert row.accuracy == pytest.approx(fold["accuracy"].mean())
        assert row.duration_s > 0 and row.n_params > 0 and row.seed == 0
    # records hold complete configurations, like Keras Tuner trials
    assert set(DEFAULTS) <= set(result.trials[0].params) and result.trials[0].params["filters"] == 8
    best = result.best
    assert best.metrics["val_accuracy"] == trials["val_accuracy"].max()
    tested = trials.dropna(subset=["test_accuracy"])
    assert tested["trial_id"].tolist() == [best.trial_id] and 0 <= tested["test_accuracy"].iloc[0] <= 1
    assert (results / "grid" / "best.keras").is_file() and (results / "grid" / "predictions.npz").is_file()
    with np.load(results / "grid" / "predictions.npz") as npz:
        assert str(npz["trial_id"]) == best.trial_id and npz["y_prob"].shape[1] == 10


@pytest.mark.slow
def test_fold_scores_have_the_same_structure_as_keras_tuner_cv(grid_run):
    _, _, frames, _, _ = grid_run
    (grid_trials, grid_folds), (kt_trials, kt_folds) = frames["grid"], frames["kt"]
    assert (kt_trials["n_folds"] == 3).all() and (grid_trials["n_folds"] == 3).all()
    for folds in (grid_folds, kt_folds):
        assert {"run", "trial_id", "fold", "val_accuracy", "val_loss", "accuracy", "loss"} <= set(folds.columns)
        assert folds.groupby("trial_id")["fold"].apply(sorted).tolist() == [[0, 1, 2]] * folds["trial_id"].nunique()
    for trials in (grid_trials, kt_trials):
        assert {"val_accuracy", "val_accuracy_std", "val_loss", "val_loss_std"} <= set(trials.columns)


def test_sklearn_folds_are_the_runner_folds(digits_arrays):
    from automnist.runner import split_indices

    _, y, _, _ = digits_arrays
    runner = [va.tolist() for _, va in split_indices(y, cv=3, validation_split=0.2, seed=7)]
    sklearn = [va.tolist() for _, va in StratifiedKFold(3, shuffle=True, random_state=7).split(np.zeros(len(y)), y)]
    assert runner == sklearn


@pytest.mark.slow
def test_random_search_with_two_jobs_samples_log_uniform_rates(tmp_path):
    spec = _spec("sklearn-random", params={"learning_rate": {"float": [1e-3, 3e-2], "log": True}},
                 n_iter=3, cv=2, n_jobs=2, epochs=1)
    assert planned_trials(spec) == 3
    result = run_search(spec, results_dir=tmp_path, run_name="rnd", progress=False)
    with Store.at(tmp_path) as store:
        trials = store.trials_frame("rnd")
        folds = store.folds_frame("rnd")
    assert len(trials) == 3 and (trials["status"] == "ok").all() and (trials["n_folds"] == 2).all()
    rates = trials["param_learning_rate"]
    assert rates.between(1e-3, 3e-2).all() and rates.nunique() == 3
    assert set(trials["param_units"]) <= {16, 32}
    assert len(folds) == 6 and result.best is not None
    assert (tmp_path / "rnd" / "best.keras").is_file()


def test_halving_over_epochs_records_every_rung(tmp_path):
    spec = _spec("sklearn-halving", params={"units": {"choice": [8, 16, 32]}, "learning_rate": 0.01},
                 factor=3, epochs=3, cv=2, resource="epochs")
    result = run_search(spec, results_dir=tmp_path, run_name="halving", progress=False)
    with Store.at(tmp_path) as store:
        trials = store.trials_frame("halving")
    # rung 0: three candidates for 1 epoch; rung 1: the best one for 3 epochs
    assert trials["iteration"].tolist() == [0, 0, 0, 1]
    assert trials["n_resources"].tolist() == [1, 1, 1, 3] and trials["epochs"].tolist() == [1, 1, 1, 3]
    assert sorted(trials["param_units"][:3]) == [8, 16, 32]
    survivor = trials.iloc[3]
    first_rung = trials.iloc[:3].set_index("param_units")
    assert first_rung.loc[survivor.param_units, "val_accuracy"] == first_rung["val_accuracy"].max()
    assert result.best.trial_id == "0003" and not np.isnan(survivor.test_accuracy)
    assert planned_trials(spec) == len(trials) == 4
    assert (tmp_path / "halving" / "best.keras").is_file()


def test_infeasible_candidates_are_recorded_and_the_search_goes_on(tmp_path):
    spec = parse_spec({
        "name": "inf", "model": "cnn", "data": {"dataset": "digits", "subset": 300},
        "params": {"conv_layers": {"choice": [1, 3]}, "kernel_size": 5, "padding": "valid", "filters": 4, "units": 8},
        "search": {"strategy": "sklearn-grid", "epochs": 1, "cv": 2},
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the non-finite scores
        result = run_search(spec, results_dir=tmp_path, run_name="inf", progress=False)
    statuses = {t.params["conv_layers"]: (t.status, t.error) for t in result.trials}
    assert statuses[1] == ("ok", None)
    assert statuses[3] == ("infeasible", "conv block 2, convolution 1: a 5x5 'valid' convolution needs an input of "
                                         "at least 5x5, got 2x2")
    assert result.best.params["conv_layers"] == 1


def test_failures_keep_the_last_line_of_each_traceback():
    from sklearn.exceptions import FitFailedWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    from automnist.strategies.sklearn import _failure_summary

    x, y = np.random.default_rng(0).random((30, 2)), np.arange(30) % 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GridSearchCV(LogisticRegression(), {"C": [-1.0, 1.0]}, cv=2, error_score=np.nan).fit(x, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
    assert _failure_summary(messages) == (
        "sklearn.utils._param_validation.InvalidParameterError: The 'C' parameter of LogisticRegression must be "
        "a float in the range (0.0, inf]. Got -1.0 instead."
    )


def test_specs_the_strategies_cannot_search_are_rejected():
    with pytest.raises(SpecError, match=r"params.learning_rate: sklearn-grid needs explicit values for a continuous "
                                         r"range: give a step or use choice"):
        _spec("sklearn-grid", params={"learning_rate": {"float": [1e-3, 1e-2], "log": True}})
    conditional = {"activation": {"choice": ["relu", "leaky_relu"]},
                   "leaky_relu_slope": {"float": [0.01, 0.3], "when": {"activation": "leaky_relu"}}}
    with pytest.raises(SpecError, match=r"params.leaky_relu_slope.when: conditional parameters are not supported"):
        _spec("sklearn-random", params=conditional)
    from automnist.space import sklearn_grid

    with pytest.raises(SpecError, match="a grid needs explicit values for a continuous range"):
        sklearn_grid(_spec("random", params={"dropout": {"float": [0.0, 0.5]}}))


@pytest.mark.parametrize(
    "strategy, params, search, message",
    [
        ("sklearn-random", {"dense_layers": 2, "units_1": {"choice": [16, 32]}}, {},
         r"params.units_1: per-layer overrides are not parameters of KerasCNNClassifier"),
        ("sklearn-halving", {"epochs": {"choice": [1, 2]}}, {"resource": "epochs"},
         r"search.resource: successive halving over epochs needs a fixed number of epochs"),
    ],
)
def test_run_rejects_what_the_estimator_cannot_express(tmp_path, strategy, params, search, message):
    spec = _spec(strategy, params=params, **search)
    with pytest.raises(SpecError, match=message):
        run_search(spec, results_dir=tmp_path, run_name="bad", progress=False)
    with Store.at(tmp_path) as store:
        assert store.get_run("bad")["status"] == "failed" and store.get_trials("bad") == []


def test_planned_trials_and_registry():
    assert get_strategy("sklearn-halving").planned_trials is planned_trials
    assert planned_trials(_spec("sklearn-grid", max_trials=10)) == 4
    assert planned_trials(_spec("sklearn-random", max_trials=10)) == 4  # only 4 distinct points
    assert planned_trials(_spec("sklearn-random", n_iter=2)) == 2
    # 9 candidates, factor 3, 9 epochs: 9 at 1 epoch, 3 at 3, 1 at 9
    nine = {"units": {"choice": [8, 16, 32]}, "learning_rate": {"choice": [0.001, 0.003, 0.01]}}
    assert planned_trials(_spec("sklearn-halving", params=nine, factor=3, epochs=9)) == 13
