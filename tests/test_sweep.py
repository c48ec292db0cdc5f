"""One-factor-at-a-time sweeps: the plan and a real chained sweep (the analysis: test_aggregate_sweep)."""

from __future__ import annotations

import warnings

import pytest

from automnist.aggregate import sweep_table, sweep_values
from automnist.errors import SpecError
from automnist.spec import parse_spec
from automnist.strategies.sweep import planned_trials
from test_aggregate_sweep import _frame, _spec


def test_planned_trials_counts_each_configuration_once():
    spec = _spec({"units": {"choice": [16, 32, 64]}, "dropout": {"float": [0.0, 0.2], "step": 0.1},
                  "learning_rate": {"choice": [0.01, 0.003], "default": 0.003}}, repeats=2)
    # baseline + 2 other units + 2 other dropouts + 1 other learning rate = 6 configurations
    assert planned_trials(spec) == 12
    assert planned_trials(_spec({"units": {"choice": [16, 32, 64]}}, max_trials=2)) == 2
    # a default off the step grid is the baseline, trained in addition to the grid
    assert planned_trials(_spec({"units": {"int": [8, 24], "step": 8, "default": 10}})) == 4


def test_conditional_parameter_counts_only_when_active_in_the_baseline():
    params = {"activation": {"choice": ["relu", "leaky_relu"]},
              "leaky_relu_slope": {"choice": [0.05, 0.2], "when": {"activation": "leaky_relu"}}}
    assert planned_trials(_spec(params)) == 2  # relu baseline: the slope is not swept
    params["activation"]["default"] = "leaky_relu"
    assert planned_trials(_spec(params)) == 3  # baseline (leaky 0.05), relu, leaky 0.2


def test_continuous_float_range_is_rejected_for_sweeps():
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "s", "params": {"dropout": {"float": [0.0, 0.5]}}, "search": {"strategy": "sweep"}},
                   source="s.yaml")
    assert str(info.value) == ("s.yaml: params.dropout: a sweep trains every value of each hyperparameter: "
                               "give the float range a step or use choice")


@pytest.mark.slow
def test_chained_sweep_end_to_end(results_dir):
    from automnist.search import run_search
    from automnist.store import Store
    from automnist.plots import plot_sweep_curves, plot_sweep_values

    spec = _spec({"units": {"choice": [8, 16]}, "learning_rate": {"choice": [0.003, 0.03]}},
                 repeats=2, chain=True, epochs=2)
    result = run_search(spec, results_dir=results_dir, run_name="sw", progress=False)
    with Store.at(results_dir) as store:
        trials = store.trials_frame("sw")
        history = store.history_frame("sw")
        run = store.get_run("sw")
    assert run["kind"] == "sweep" and run["status"] == "finished"
    ids = trials["trial_id"].tolist()
    assert sorted(ids) == ["baseline#r0", "baseline#r1", "learning_rate=0.03#r0", "learning_rate=0.03#r1",
                           "units=16#r0", "units=16#r1"]
    assert trials.groupby("trial_id")["seed"].first().to_dict()["baseline#r1"] == 1  # repeats r use seed + r
    assert (trials["status"] == "ok").all()
    # the chain: the learning-rate trials use the units that won its sweep (best mean val_accuracy)
    means = trials.assign(u=trials.param_units).query("param_learning_rate == 0.003").groupby("u")["val_accuracy"].mean()
    winner = means.idxmax() if means.iloc[0] != means.iloc[1] else 8
    assert set(trials.loc[trials.param_learning_rate == 0.03, "param_units"]) == {winner}
    table = sweep_table(trials, run["config"]).set_index("param")
    assert table.loc["units", "best"] == str(winner) and table.loc["learning_rate", "baseline"] == "0.003"
    assert table.loc["learning_rate", "baseline_changed"] == (winner != 8)
    assert table["test"].str.startswith("Welch t-test over 2 vs 2 runs").all()
    # figures: one row of (accuracy, loss) panels per swept hyperparameter
    fig = plot_sweep_curves(history, trials, run["config"])
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "units"
    assert len(plot_sweep_values(sweep_values(trials, spec)).axes) == 2
    # resuming trains nothing more; a smaller budget stops early with a warning
    again = run_search(spec, results_dir=results_dir, run_name="sw", resume=True, progress=False)
    assert len(again.trials) == 6 and result.best is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short = run_search(spec.replace(max_trials=3), results_dir=results_dir, run_name="short", progress=False)
    assert [t.trial_id for t in short.trials] == ["baseline#r0", "baseline#r1", "units=16#r0"]
    assert any("stopped by search.max_trials=3 after 3 of 6 planned trials" in str(w.message) for w in caught)


def test_values_without_an_ok_run_keep_their_place_in_the_figure():
    from automnist.plots import plot_sweep_values

    spec = _spec({"conv_layers": {"choice": [1, 2, 3]}, "units": {"choice": [16, 32]}}, repeats=2, max_trials=6)
    base = {"conv_layers": 1, "units": 16}
    rows = [("baseline#r0", base, 0.9), ("baseline#r1", base, 0.92),
            ("conv_layers=2#r0", {**base, "conv_layers": 2}, 0.8), ("conv_layers=2#r1", {**base, "conv_layers": 2}, 0.82),
            ("conv_layers=3#r0", {**base, "conv_layers": 3}, None), ("conv_layers=3#r1", {**base, "conv_layers": 3}, None)]
    values = sweep_values(_frame(rows, ["conv_layers", "units"]), spec)  # units=32: cut by max_trials
    fig = plot_sweep_values(values)
    conv, units = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in conv.get_xticklabels()] == ["1", "2", "3"]
    assert [(t.get_text(), t.get_position()[0]) for t in conv.texts] == [("failed", 2)]
    assert [round(b.get_height(), 3) for b in conv.patches] == [0.91, 0.81]
    assert [(t.get_text(), t.get_position()[0]) for t in units.texts] == [("not trained", 1)]


def test_chain_alpha_is_validated():
    ok = _spec({"units": {"choice": [16, 32]}}, repeats=2, chain=True, chain_alpha=0.1)
    assert ok.search.chain_alpha == 0.1 and parse_spec(ok.to_dict()) == ok
    assert "chain_alpha" not in _spec({"units": {"choice": [16, 32]}}).to_dict()["search"]  # old specs keep their hash
    cases = [({"chain": True, "repeats": 2, "chain_alpha": 1.5}, "must be null or a significance level in (0, 1), got 1.5"),
             ({"repeats": 2, "chain_alpha": 0.05}, "only applies to chained sweeps: set search.chain: true"),
             ({"chain": True, "chain_alpha": 0.05}, "a t-test against the baseline needs search.repeats >= 2, got 1")]
    for search, message in cases:
        with pytest.raises(SpecError) as info:
            parse_spec({"name": "s", "params": {"units": {"choice": [16, 32]}},
                        "search": {"strategy": "sweep", **search}}, source="s.yaml")
        assert str(info.value) == f"s.yaml: search.chain_alpha: {message}"
