"""One-factor-at-a-time sweeps: the plan, the analysis on known frames, a real chained sweep."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from automnist.errors import SpecError
from automnist.spec import parse_spec
from automnist.strategies.sweep import planned_trials, sweep_curves, sweep_table, sweep_values


def _spec(params, **search):
    return parse_spec({"name": "sw", "data": {"dataset": "digits", "subset": 300},
                       "params": {"conv_layers": 1, "filters": 8, "padding": "same", **params},
                       "search": {"strategy": "sweep", "epochs": 1, "max_trials": 100, **search}})


def _frame(rows, names):
    """A trials frame like Store.trials_frame: trial_id, status, param_*, val_accuracy, n_folds."""
    out = []
    for i, (tid, params, score, *rest) in enumerate(rows):
        row = {"run": "r", "trial_id": tid, "number": i, "status": "ok" if score is not None else "failed"}
        row.update({f"param_{n}": params.get(n) for n in names})
        row["val_accuracy"] = math.nan if score is None else score
        row["test_accuracy"] = math.nan if score is None else score - 0.01
        row["n_folds"] = rest[0] if rest else 0
        if len(rest) > 1:
            row["val_accuracy_std"] = rest[1]
        out.append(row)
    return pd.DataFrame(out)


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


def test_sweep_table_on_a_known_unchained_sweep():
    spec = _spec({"units": {"choice": [16, 32]}, "learning_rate": {"choice": [0.003, 0.01]}}, repeats=3)
    base = {"units": 16, "learning_rate": 0.003}
    rows = [
        ("baseline#r0", base, 0.50), ("baseline#r1", base, 0.52), ("baseline#r2", base, 0.51),
        ("units=32#r0", {**base, "units": 32}, 0.60), ("units=32#r1", {**base, "units": 32}, 0.64),
        ("units=32#r2", {**base, "units": 32}, 0.62),
        ("learning_rate=0.01#r0", {**base, "learning_rate": 0.01}, 0.40),
        ("learning_rate=0.01#r1", {**base, "learning_rate": 0.01}, None),  # failed
        ("learning_rate=0.01#r2", {**base, "learning_rate": 0.01}, 0.44),
    ]
    trials = _frame(rows, ["units", "learning_rate"])
    values = sweep_values(trials, spec)
    assert values[["param", "value", "is_baseline", "n", "n_failed"]].values.tolist() == [
        ["units", "16", True, 3, 0], ["units", "32", False, 3, 0],
        ["learning_rate", "0.003", True, 3, 0], ["learning_rate", "0.01", False, 2, 1],
    ]
    # the baseline's trials serve both hyperparameters
    assert values["trial_ids"].iloc[0] == values["trial_ids"].iloc[2] == "baseline#r0,baseline#r1,baseline#r2"
    assert values["mean"].iloc[1] == pytest.approx(0.62) and values["std"].iloc[1] == pytest.approx(0.02)
    table = sweep_table(trials, spec).set_index("param")
    units = table.loc["units"]
    assert units["best"] == "32" and units["runner_up"] == "16" and units["baseline"] == "16"
    assert units["margin"] == pytest.approx(0.11)
    assert units["p_value"] == pytest.approx(stats.ttest_ind([0.60, 0.64, 0.62], [0.50, 0.52, 0.51],
                                                             equal_var=False).pvalue)
    assert units["test"] == "Welch t-test over 3 vs 3 runs" and units["n"] == 3
    lr = table.loc["learning_rate"]
    assert lr["best"] == "0.003" and lr["runner_up"] == "0.01" and lr["margin"] == pytest.approx(0.09)
    assert lr["p_value"] == pytest.approx(stats.ttest_ind([0.50, 0.52, 0.51], [0.40, 0.44], equal_var=False).pvalue)
    assert not table["baseline_changed"].any() and not table["carried"].any()


def test_a_tie_within_float32_noise_keeps_the_first_value_in_sweep_order():
    """Seen on real MNIST: adam (the baseline) and adadelta both averaged 4711/4800 over three
    seeds, but float32 accuracies made adadelta's mean 2e-8 higher and the chain carried it."""
    from automnist.strategies.sweep import _best

    adam = [float(np.float32(v)) for v in (0.985, 0.980625, 0.97875)]
    adadelta = [float(np.float32(v)) for v in (0.98, 0.985, 0.979375)]
    assert 0 < np.mean(adadelta) - np.mean(adam) < 1e-7  # the noise the rule must ignore
    assert _best([("adam", adam), ("adadelta", adadelta)], "max") == "adam"
    assert _best([("adam", adam), ("adadelta", [a + 1e-4 for a in adadelta])], "max") == "adadelta"
    assert _best([("a", [0.3]), ("b", [0.2]), ("c", [0.2 + 1e-9])], "min") == "b"
    spec = _spec({"optimizer": {"choice": ["adam", "adadelta"]}, "units": {"choice": [16, 32]}}, repeats=3, chain=True)
    base = {"optimizer": "adam", "units": 16}
    rows = [(f"baseline#r{r}", base, adam[r]) for r in range(3)]
    rows += [(f"optimizer=adadelta#r{r}", {**base, "optimizer": "adadelta"}, adadelta[r]) for r in range(3)]
    rows += [(f"units=32#r{r}", {**base, "units": 32}, 0.9) for r in range(3)]  # swept with adam: the tie's winner
    table = sweep_table(_frame(rows, ["optimizer", "units"]), spec).set_index("param")
    assert table.loc["optimizer", "best"] == "adam" and table.loc["optimizer", "runner_up"] == "adadelta"
    assert table.loc["units", "baseline"] == "16" and table.loc["units", "best"] == "16"
    assert not table.loc["units", "baseline_changed"]


def test_sweep_table_replays_a_chain_and_a_conditional_parameter():
    spec = _spec({"units": {"choice": [16, 32]}, "activation": {"choice": ["relu", "leaky_relu"]},
                  "leaky_relu_slope": {"choice": [0.05, 0.2], "when": {"activation": "leaky_relu"}}},
                 chain=True)
    rows = [
        ("baseline#r0", {"units": 16, "activation": "relu", "leaky_relu_slope": None}, 0.50),
        ("units=32#r0", {"units": 32, "activation": "relu", "leaky_relu_slope": None}, 0.60),
        # after the chain, units is 32 in the baseline of the activation sweep
        ("activation=leaky_relu#r0", {"units": 32, "activation": "leaky_relu", "leaky_relu_slope": 0.05}, 0.70),
        ("leaky_relu_slope=0.2#r0", {"units": 32, "activation": "leaky_relu", "leaky_relu_slope": 0.2}, 0.65),
    ]
    trials = _frame(rows, ["units", "activation", "leaky_relu_slope"])
    table = sweep_table(trials, spec).set_index("param")
    assert table["best"].tolist() == ["32", "leaky_relu", "0.05"]
    assert table["baseline"].tolist() == ["16", "relu", "0.05"]
    assert table["baseline_changed"].tolist() == [False, True, True]
    assert table["carried"].all()
    assert table["baseline_mean"].tolist() == pytest.approx([0.50, 0.60, 0.70])
    assert table.loc["units", "note"] == "single run per value: set search.repeats >= 2 (or search.cv) for a p-value"
    assert math.isnan(table.loc["units", "p_value"])
    # without the chain the same frame has no trials for the activation values it expects
    flat = sweep_values(trials, _spec({"units": {"choice": [16, 32]}, "activation": {"choice": ["relu", "leaky_relu"]},
                                       "leaky_relu_slope": {"choice": [0.05, 0.2], "when": {"activation": "leaky_relu"}}}))
    assert flat.loc[flat.param == "activation", "n"].tolist() == [1, 0]
    assert flat.loc[flat.param == "leaky_relu_slope", "note"].str.startswith("not swept: its condition").all()


def test_sweep_table_uses_fold_statistics_with_cv():
    spec = _spec({"units": {"choice": [16, 32]}}, cv=5)
    rows = [("baseline#r0", {"units": 16}, 0.50, 5, 0.04), ("units=32#r0", {"units": 32}, 0.58, 5, 0.03)]
    table = sweep_table(_frame(rows, ["units"]), spec)
    expected = stats.ttest_ind_from_stats(0.58, 0.03, 5, 0.50, 0.04, 5, equal_var=False).pvalue
    assert table["p_value"].iloc[0] == pytest.approx(expected)
    assert table["n"].iloc[0] == 5 and "fold mean/std (5 vs 5 folds" in table["test"].iloc[0]


def test_sweep_curves_average_repeats_per_epoch():
    spec = _spec({"units": {"choice": [16, 32]}}, repeats=2)
    trials = _frame([("baseline#r0", {"units": 16}, 0.5), ("baseline#r1", {"units": 16}, 0.7),
                     ("units=32#r0", {"units": 32}, 0.6), ("units=32#r1", {"units": 32}, 0.8)], ["units"])
    history = pd.DataFrame(
        [{"run": "r", "trial_id": t, "fold": 0, "epoch": e, "metric": "val_accuracy", "value": v}
         for t, vals in {"baseline#r0": (0.2, 0.5), "baseline#r1": (0.4, 0.7),
                         "units=32#r0": (0.3, 0.6), "units=32#r1": (0.5, 0.8)}.items()
         for e, v in enumerate(vals, start=1)]
    )
    curves = sweep_curves(history, trials, spec)
    got = curves.set_index(["value", "epoch"])["mean"].to_dict()
    assert got == pytest.approx({("16", 1): 0.3, ("16", 2): 0.6, ("32", 1): 0.4, ("32", 2): 0.7})
    assert curves["n"].eq(2).all() and curves["std"].iloc[0] == pytest.approx(np.std([0.2, 0.4], ddof=1))


@pytest.mark.slow
def test_chained_sweep_end_to_end(results_dir):
    from automnist.search import run_search
    from automnist.store import Store
    from automnist.sweep_plots import plot_sweep_curves, plot_sweep_values

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
    from automnist.sweep_plots import plot_sweep_values

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


def test_chain_alpha_carries_only_winners_that_beat_the_baseline_significantly():
    spec = _spec({"units": {"choice": [16, 32]}, "activation": {"choice": ["relu", "leaky_relu"]}},
                 repeats=3, chain=True, chain_alpha=0.05)
    base = {"units": 16, "activation": "relu"}
    rows = [(f"baseline#r{r}", base, v) for r, v in enumerate((0.80, 0.81, 0.82))]
    # units=32 is better on average, but not significantly: the baseline keeps 16 units
    rows += [(f"units=32#r{r}", {**base, "units": 32}, v) for r, v in enumerate((0.81, 0.82, 0.83))]
    # so leaky_relu is trained with 16 units; it is clearly better and is carried
    rows += [(f"activation=leaky_relu#r{r}", {**base, "activation": "leaky_relu"}, v)
             for r, v in enumerate((0.90, 0.91, 0.92))]
    table = sweep_table(_frame(rows, ["units", "activation"]), spec).set_index("param")
    units, act = table.loc["units"], table.loc["activation"]
    assert units["best"] == "32" and not units["carried"]
    assert units["p_vs_baseline"] == pytest.approx(
        stats.ttest_ind([0.81, 0.82, 0.83], [0.80, 0.81, 0.82], equal_var=False).pvalue) and units["p_vs_baseline"] > 0.05
    assert act["baseline"] == "relu" and not act["baseline_changed"] and act["n_values"] == 2
    assert act["best"] == "leaky_relu" and act["carried"] and act["p_vs_baseline"] < 0.05
    assert act["best_mean"] == pytest.approx(0.91)
    # the strict chain would have swept activation around 32 units: those trials are not in this frame
    strict = sweep_values(_frame(rows, ["units", "activation"]), _spec(
        {"units": {"choice": [16, 32]}, "activation": {"choice": ["relu", "leaky_relu"]}}, repeats=3, chain=True))
    assert strict.set_index(["param", "value"]).loc[("activation", "leaky_relu"), "note"] == "not trained (budget)"


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
