"""aggregate.sweep: the sweep analysis (values, winners, p-values, curves) on known frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from automnist.aggregate import best_value, sweep_curves, sweep_table, sweep_values
from automnist.spec import parse_spec


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
    adam = [float(np.float32(v)) for v in (0.985, 0.980625, 0.97875)]
    adadelta = [float(np.float32(v)) for v in (0.98, 0.985, 0.979375)]
    assert 0 < np.mean(adadelta) - np.mean(adam) < 1e-7  # the noise the rule must ignore
    assert best_value([("adam", adam), ("adadelta", adadelta)], "max") == "adam"
    assert best_value([("adam", adam), ("adadelta", [a + 1e-4 for a in adadelta])], "max") == "adadelta"
    assert best_value([("a", [0.3]), ("b", [0.2]), ("c", [0.2 + 1e-9])], "min") == "b"
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
