"""The starting portfolio of ``strategy: auto``, projected onto real specs' spaces."""

from __future__ import annotations

import optuna
import pytest

from automnist.space import suggest
from automnist.spec import load_spec, parse_spec
from automnist.strategies.portfolio import PORTFOLIO, project, starting_points

from conftest import ROOT

SPACE = {
    "conv_layers": {"choice": [1, 2, 3]},
    "filters": {"choice": [32, 64, 128]},
    "kernel_size": {"choice": [3, 5]},
    "units": {"int": [16, 512], "log": True},
    "dropout": {"float": [0.0, 0.5], "step": 0.1},
    "learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True},
    "batch_size": {"choice": [32, 256]},
    "optimizer": {"choice": ["sgd", "rmsprop"]},
}


def _spec(params: dict, **search) -> object:
    return parse_spec({"name": "p", "data": {"dataset": "digits"}, "params": params,
                       "search": {"strategy": "auto", "time_budget": 60, **search}})


def test_projection_takes_the_nearest_allowed_value() -> None:
    spec = _spec(SPACE)
    first, second = starting_points(spec)
    # exact values where the space has them; per-block widths 32/64 become one width (mean 48 -> 64 on a log scale)
    assert first["conv_layers"] == 2 and first["kernel_size"] == 3 and first["filters"] == 64
    assert first["learning_rate"] == pytest.approx(1e-3) and first["dropout"] == pytest.approx(0.3)
    assert first["units"] == 128 and first["batch_size"] == 256  # 128 is 1 octave from 256, 2 from 32
    assert "optimizer" not in first  # neither choice is adam: left to the sampler
    assert second["conv_layers"] == 3 and second["units"] == 256 and second["dropout"] == pytest.approx(0.4)


def test_out_of_range_values_are_clipped_onto_the_step() -> None:
    spec = _spec({"units": {"int": [200, 1000], "step": 100}, "dropout": {"float": [0.05, 0.25], "step": 0.05},
                  "learning_rate": {"float": [0.01, 1.0], "log": True}})
    units, dropout, lr = (spec.param_map[n] for n in ("units", "dropout", "learning_rate"))
    assert project(units, 128) == 200 and project(units, 260) == 300
    assert project(dropout, 0.3) == pytest.approx(0.25) and project(dropout, 0.12) == pytest.approx(0.1)
    assert project(lr, 1e-3) == pytest.approx(0.01)


def test_spec_defaults_win_in_the_first_entry() -> None:
    spec = _spec({**SPACE, "learning_rate": {"float": [1e-4, 1e-2], "log": True, "default": 3e-3}})
    first, second = starting_points(spec)
    assert first["learning_rate"] == pytest.approx(3e-3)
    assert second["learning_rate"] == pytest.approx(1e-3)


def test_the_points_are_what_suggest_asks_for() -> None:
    """Enqueued in optuna, each point comes back from :func:`suggest` as a configuration
    with exactly the projected values (choices of per-block lists included)."""
    spec = load_spec(ROOT / "search_spaces" / "demo.yaml")
    points = starting_points(spec)
    assert len(points) == len(PORTFOLIO)
    study = optuna.create_study()
    for point in points:
        study.enqueue_trial(point)
    for point in points:
        config = suggest(study.ask(), spec)
        assert config["learning_rate"] == pytest.approx(1e-3) and config["kernel_size"] == 3
        assert config["filters"] == [32, 64] and config["conv_layers"] == point["conv_layers"]
