"""SearchSpec -> Keras Tuner hyperparameters and scikit-learn grids/distributions."""

from __future__ import annotations

import keras_tuner as kt
import numpy as np
import pytest
from scipy import stats

from automnist.errors import SpecError
from automnist.space import active_params, complete_config, declare, decode, sklearn_distributions, sklearn_grid
from automnist.spec import DEFAULTS, parse_spec

SPACE = {
    "name": "s",
    "params": {
        "filters": {"choice": [[8, 16], [32, 64]]},
        "kernel_size": {"choice": [3, 5]},
        "activation": {"choice": ["relu", "leaky_relu"]},
        "leaky_relu_slope": {"float": [0.01, 0.3], "when": {"activation": "leaky_relu"}},
        "filters_3": {"choice": [64, 128], "when": {"conv_layers": 3}},
        "conv_layers": {"int": [1, 3]},
        "learning_rate": {"float": [1e-4, 1e-2], "log": True},
        "dropout": {"float": [0.0, 0.4], "step": 0.2},
        "augmentation": {"choice": [None, {"rotation": 8, "shift": 0.02}]},
    },
}


def test_declare_registers_every_searched_parameter_with_types_and_conditions():
    spec = parse_spec(SPACE)
    hp = kt.HyperParameters()
    values = declare(hp, spec)
    space = {h.name: h for h in hp.space}
    assert set(space) == {p.name for p in spec.tunable}
    assert space["filters"].values == ["8-16", "32-64"]  # lists go to KT as labels
    assert space["learning_rate"].sampling == "log"
    assert space["dropout"].step == 0.2
    assert [c.name for c in space["filters_3"].conditions] == ["conv_layers"]
    # the defaults: first choice, low end; inactive conditionals are None
    assert values["filters"] == [8, 16] and values["kernel_size"] == 3 and values["conv_layers"] == 1
    assert values["leaky_relu_slope"] is None and values["filters_3"] is None
    assert values["augmentation"] is None


def test_decode_turns_labels_back_into_values_and_drops_tuner_keys():
    spec = parse_spec(SPACE)
    values = decode(spec, {"filters": "32-64", "activation": "leaky_relu", "leaky_relu_slope": 0.2,
                           "augmentation": "rotation=8,shift=0.02", "conv_layers": 3, "filters_3": 128,
                           "tuner/epochs": 4, "tuner/trial_id": "3"})
    assert values["filters"] == [32, 64]
    assert values["augmentation"] == {"rotation": 8, "shift": 0.02}
    assert values["leaky_relu_slope"] == 0.2 and values["filters_3"] == 128
    assert "tuner/epochs" not in values
    assert active_params(spec, values)["filters_3"] == 128
    assert "filters_3" not in active_params(spec, {**values, "conv_layers": 2})


def test_complete_config_fills_fixed_and_default_values_and_clears_inactive_conditions():
    spec = parse_spec({"name": "c", "params": {
        "dense_layers": 2,
        "units": {"choice": [[64, 32], [128, 64]]},
        "activation": {"choice": ["relu", "leaky_relu"]},
        "leaky_relu_slope": {"float": [0.05, 0.3], "when": {"activation": "leaky_relu"}},
        # nested: kernel_size_3 needs filters_3 == 128, which needs conv_layers == 3
        "kernel_size_3": {"choice": [3, 5], "when": {"filters_3": 128}},
        "filters_3": {"choice": [64, 128], "when": {"conv_layers": 3}},
        "conv_layers": {"int": [2, 3]},
    }})
    deep = complete_config(spec, {"conv_layers": np.int64(3), "filters_3": 128, "activation": "leaky_relu"})
    assert set(deep) == set(DEFAULTS) | {"filters_3", "kernel_size_3"}
    assert deep["conv_layers"] == 3 and type(deep["conv_layers"]) is int
    assert deep["dense_layers"] == 2 and deep["batch_size"] == DEFAULTS["batch_size"]  # fixed / builder default
    assert deep["units"] == [64, 32] and deep["kernel_size_3"] == 3 and deep["leaky_relu_slope"] == 0.05  # defaults
    shallow = complete_config(spec, {"conv_layers": 2, "filters_3": 128, "kernel_size_3": 5, "activation": "relu",
                                     "units": (128, 64)})
    assert shallow["filters_3"] is None and shallow["kernel_size_3"] is None  # the nested one follows its parent
    assert shallow["leaky_relu_slope"] is None and shallow["units"] == [128, 64]
    shallow["filters"].append(128)  # a fresh copy: the defaults are untouched
    assert DEFAULTS["filters"] == [32, 64]
    assert complete_config(spec, {})["filters_3"] is None  # the baseline: conv_layers 2


def test_random_oracle_samples_are_valid_configurations():
    spec = parse_spec(SPACE)
    hp = kt.HyperParameters()
    declare(hp, spec)
    seen = set()
    for _ in range(20):
        trial_hp = hp.copy()
        for h in trial_hp.space:
            if trial_hp.is_active(h):
                trial_hp.values[h.name] = h.random_sample(np.random.randint(1 << 30))
        v = declare(trial_hp, spec)
        assert v["filters"] in ([8, 16], [32, 64])
        assert 1e-4 <= v["learning_rate"] <= 1e-2
        assert (v["leaky_relu_slope"] is None) == (v["activation"] != "leaky_relu")
        seen.add(v["activation"])
    assert seen == {"relu", "leaky_relu"}


def test_sklearn_grid_and_distributions():
    spec = parse_spec({"name": "g", "model": "mlp", "params": {
        "batch_size": {"choice": [32, 64]}, "dense_layers": {"int": [1, 3]},
        "dropout": {"float": [0.0, 0.2], "step": 0.1}, "optimizer": {"choice": ["adam", "rmsprop"]}}})
    grid = sklearn_grid(spec)
    assert grid == {"batch_size": [32, 64], "dense_layers": [1, 2, 3], "dropout": [0.0, 0.1, 0.2],
                    "optimizer": ["adam", "rmsprop"]}
    log = parse_spec({"name": "r", "params": {"learning_rate": {"float": [1e-4, 1e-1], "log": True},
                                               "units": {"int": [16, 256], "log": True},
                                               "dense_layers": {"int": [1, 3]}}})
    dists = sklearn_distributions(log)
    lr = dists["learning_rate"].rvs(size=2000, random_state=0)
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # log-uniform: about a third of the samples in each decade
    assert 0.28 < np.mean(lr < 1e-3) < 0.39
    units = dists["units"].rvs(size=500, random_state=0)
    assert units.min() >= 16 and units.max() <= 256 and units.dtype.kind == "i"
    assert isinstance(dists["dense_layers"], type(stats.randint(1, 4)))
    with pytest.raises(SpecError, match="params.learning_rate: a grid needs explicit values"):
        sklearn_grid(log)
