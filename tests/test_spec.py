"""Spec parsing, validation errors (file, key path, rule, value) and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from automnist.errors import SpecError
from automnist.spec import (
    DEFAULTS,
    TOP_KEYS,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    freeze,
    load_spec,
    parse_spec,
    value_label,
)

ROOT = Path(__file__).resolve().parents[1]


def test_forms_of_parameters_parse_into_dataclasses():
    spec = parse_spec(
        {
            "name": "s",
            "params": {
                "kernel_size": 3,
                "filters": [32, 64],
                "units": {"choice": [64, 128]},
                "dense_layers": {"int": [1, 3]},
                "learning_rate": {"float": [1e-4, 1e-2], "log": True},
                "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
                "batch_size": {"type": "choice", "values": [32, 64], "default": 64},
                "optimizer": {"type": "fixed", "value": "sgd"},
            },
        }
    )
    p = spec.param_map
    assert p["kernel_size"] == FixedParam("kernel_size", 3)
    assert p["filters"] == FixedParam("filters", (32, 64))
    assert p["units"] == ChoiceParam("units", (64, 128))
    assert p["dense_layers"] == IntParam("dense_layers", 1, 3)
    assert p["learning_rate"] == FloatParam("learning_rate", 1e-4, 1e-2, log=True)
    assert p["dropout"].grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert p["batch_size"].default == 64
    assert [q.name for q in spec.tunable] == ["units", "dense_layers", "learning_rate", "dropout", "batch_size"]
    values = spec.default_values()
    assert values["optimizer"] == "sgd" and values["batch_size"] == 64 and values["units"] == 64
    assert values["learning_rate"] == 1e-4 and values["filters"] == [32, 64]
    assert set(DEFAULTS) <= set(values)


def test_defaults_of_sections():
    spec = parse_spec({"name": "x"})
    assert spec.model == "cnn" and spec.data.dataset == "digits" and spec.data.validation_split == 0.2
    assert spec.search.strategy == "random" and spec.search.max_trials == 10 and spec.search.seed == 0
    assert spec.objective.name == "val_accuracy" and spec.objective.direction == "max"
    assert parse_spec({"name": "x", "objective": "val_loss"}).objective.direction == "min"


def test_round_trip_through_to_dict_keeps_everything_and_hash():
    raw = {
        "name": "rt",
        "model": "cnn",
        "data": {"dataset": "mnist", "subset": 500, "noise": {"kind": "gaussian", "std": 0.3, "on": ["train"]}},
        "params": {
            "filters": {"choice": [[8, 16], [32, 64]]},
            "activation": {"choice": ["relu", "leaky_relu"]},
            "leaky_relu_slope": {"float": [0.01, 0.3], "when": {"activation": "leaky_relu"}},
            "augmentation": {"rotation": 8, "shift": 0.02, "zoom": 0.08, "shear": 0.1},
        },
        "search": {"strategy": "hyperband", "epochs": 9, "time_budget": 60, "cv": 3},
    }
    spec = parse_spec(raw)
    again = parse_spec(spec.to_dict())
    assert again == spec and again.hash == spec.hash
    assert spec.param_map["leaky_relu_slope"].when == (("activation", ("leaky_relu",)),)
    assert spec.data.noise.on == ("train",)
    assert spec.replace(max_trials=3).search.max_trials == 3
    assert spec.replace(max_trials=3).hash != spec.hash
    assert spec.replace(max_trials=None) == spec  # CLI flags left unset change nothing


@pytest.mark.parametrize(
    "params, path, rule",
    [
        ({"learning_rate": {"type": "float", "low": 0, "high": 0.1, "log": True}},
         "params.learning_rate.low", "log scale needs low > 0, got 0"),
        ({"learning_rate": {"float": [0.1, 0.01]}}, "params.learning_rate", "needs low <= high"),
        ({"activation": "softplus"}, "params.activation", "must be one of relu"),
        ({"activation": {"choice": ["relu", "swishy"]}}, "params.activation.choice[1]", "got 'swishy'"),
        ({"dropout": 1.5}, "params.dropout", "must be in [0.0, 1.0)"),
        ({"lerning_rate": 0.1}, "params.lerning_rate", "did you mean 'learning_rate'"),
        ({"batch_size": {"int": [16, 64], "step": 0}}, "params.batch_size.step", "must be a positive integer"),
        ({"units": {"choice": []}}, "params.units.choice", "must be a non-empty list"),
        ({"units": {"choice": [64, 64]}}, "params.units.choice", "values must be distinct"),
        ({"augmentation": {"rotation": 8, "blur": 1}}, "params.augmentation", "unknown augmentation key 'blur'"),
        ({"leaky_relu_slope": {"float": [0.0, 0.3], "when": {"nope": 1}}}, "params.leaky_relu_slope.when",
         "unknown hyperparameter 'nope'"),
        ({"optimizer": {"choice": ["adam"], "default": "sgd"}}, "params.optimizer.default", "must be one of the choices"),
    ],
)
def test_bad_params_name_file_key_rule_and_value(params, path, rule):
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "bad", "params": params}, source="spaces/bad.yaml")
    msg = str(info.value)
    assert msg.startswith(f"spaces/bad.yaml: {path}: "), msg
    assert rule in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "raw, path",
    [
        ({"modle": "cnn"}, "modle"),
        ({"model": "rnn"}, "model"),
        ({"search": {"strategy": "annealing"}}, "search.strategy"),
        ({"search": {"max_trials": 0}}, "search.max_trials"),
        ({"search": {"cv": 1}}, "search.cv"),
        ({"search": {"time_budget": -5}}, "search.time_budget"),
        ({"data": {"subset": 5}}, "data.subset"),
        ({"data": {"validation_split": 1.0}}, "data.validation_split"),
        ({"data": {"noise": {"kind": "poisson"}}}, "data.noise.kind"),
        ({"objective": "f1"}, "objective.name"),
        ({"search": {"strategy": "grid"}, "params": {"dropout": {"float": [0, 0.5]}}}, "params.dropout"),
        ({"model": "mlp", "params": {"kernel_size": {"choice": [3, 5]}}}, "params.kernel_size"),
    ],
)
def test_bad_sections(raw, path):
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "bad", **raw}, source="f.yaml")
    assert str(info.value).startswith(f"f.yaml: {path}: ")


def test_load_spec_errors_for_missing_empty_and_broken_files(tmp_path):
    with pytest.raises(SpecError, match="missing.yaml: file not found"):
        load_spec(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(SpecError, match="empty.yaml: the file is empty"):
        load_spec(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("params:\n  units: [1, 2\n")
    with pytest.raises(SpecError, match=r"broken.yaml: line \d+: invalid YAML"):
        load_spec(broken)


def test_load_spec_takes_name_from_file_and_demo_is_valid(tmp_path):
    f = tmp_path / "my_space.yaml"
    f.write_text("params: {units: {choice: [32, 64]}}\n")
    assert load_spec(f).name == "my_space"
    demo = load_spec(ROOT / "search_spaces" / "demo.yaml")
    assert demo.name == "demo" and demo.data.dataset == "digits" and len(demo.tunable) >= 5


def test_value_label_is_short_and_stable():
    assert value_label([32, 64]) == "32-64"
    assert value_label({"shift": 0.02, "rotation": 8}) == "rotation=8,shift=0.02"
    assert value_label(None) == "none"
    assert value_label(0.001) == "0.001"


def test_spec_values_are_immutable():
    spec = parse_spec({"name": "x", "params": {"augmentation": {"rotation": 8}}})
    with pytest.raises(TypeError):
        spec.param_map["augmentation"].value["rotation"] = 9
    values = spec.fixed_values()
    values["augmentation"]["rotation"] = 10  # copies are plain and mutable
    assert spec.fixed_values()["augmentation"] == {"rotation": 8}


def test_freeze_makes_values_hashable_and_to_dict_has_the_top_keys():
    frozen = freeze({"adam": 0.01, "filters": [8, [16, 32]]})
    assert frozen == {"adam": 0.01, "filters": (8, (16, 32))}
    assert hash(frozen) == hash(freeze({"filters": [8, [16, 32]], "adam": 0.01}))
    assert tuple(parse_spec({"name": "t", "denoise": True, "data": {"noise": {"std": 0.2}},
                            "final": {"ensemble": 2}}).to_dict()) == TOP_KEYS
