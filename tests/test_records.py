"""The one rule for which trial is best, objective directions and plain values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automnist.records import (
    TrialRecord,
    best_trial,
    is_better,
    outranks,
    objective_direction,
    plain_value,
    ranked_trials,
    score_key,
)


def _rec(tid, value, status="ok", metric="val_accuracy"):
    return TrialRecord(tid, int(tid), {}, status=status, metrics={} if value is None else {metric: value})


def test_objective_direction_defaults_by_name_and_checks_given():
    assert objective_direction("val_loss") == "min"
    assert objective_direction("loss") == "min"
    assert objective_direction("val_accuracy") == "max"
    assert objective_direction("val_loss", "max") == "max"
    with pytest.raises(ValueError, match="direction: must be 'max' or 'min', got 'up'"):
        objective_direction("val_loss", "up")


def test_score_key_is_higher_better_and_float_noise_ties():
    assert score_key(0.9, "max") == 0.9
    assert score_key(0.25, "min") == -0.25
    assert score_key(None, "max") is None and score_key(math.nan, "max") is None and score_key("x", "max") is None
    # the same accuracy count averaged over folds in float32 differs by ~2e-8: a tie
    a, b = 0.98145831, 0.98145833
    assert a != b and score_key(a, "max") == score_key(b, "max") == 0.9814583


def test_is_better_strict_and_missing_values():
    assert is_better(0.91, 0.90, "max") and not is_better(0.90, 0.91, "max")
    assert is_better(0.2, 0.3, "min") and not is_better(0.3, 0.2, "min")
    assert not is_better(0.9, 0.9 + 1e-9, "max") and not is_better(0.9 + 1e-9, 0.9, "max")  # a tie is not better
    assert is_better(0.1, None, "max") and not is_better(None, 0.1, "max") and not is_better(math.nan, 0.1, "max")


def test_best_and_ranked_trials_skip_failed_and_keep_order_on_ties():
    records = [_rec("0", 0.80), _rec("1", 0.95, status="failed"), _rec("2", 0.90), _rec("3", 0.90 + 1e-9),
               _rec("4", None), _rec("5", math.nan)]
    assert [r.trial_id for r in ranked_trials(records, "val_accuracy", "max")] == ["2", "3", "0"]
    assert best_trial(records, "val_accuracy", "max").trial_id == "2"
    assert best_trial(records, "val_accuracy", "min").trial_id == "0"
    assert best_trial([_rec("0", None)], "val_accuracy", "max") is None


def test_plain_value_converts_numpy_and_containers():
    value = (np.int64(3), {"a": np.float32(0.5), 1: [np.bool_(True)]}, np.arange(2))
    out = plain_value(value)
    assert out == [3, {"a": 0.5, "1": [True]}, [0, 1]]
    assert type(out[0]) is int and type(out[1]["a"]) is float and type(out[1]["1"][0]) is bool


def test_fully_trained_trials_outrank_partly_trained_ones():
    two_epochs = TrialRecord("0", 0, {}, metrics={"val_accuracy": 0.95}, epochs=2, max_epochs=10)
    pruned = TrialRecord("1", 1, {}, metrics={"val_accuracy": 0.96}, epochs=9, max_epochs=10, stop_reason="pruned")
    full = TrialRecord("2", 2, {}, metrics={"val_accuracy": 0.93}, epochs=10, max_epochs=10)
    early = TrialRecord("3", 3, {}, metrics={"val_accuracy": 0.92}, epochs=4, max_epochs=10,
                        stop_reason="early_stopping")
    cut = TrialRecord("4", 4, {}, metrics={"val_accuracy": 0.99}, epochs=10, max_epochs=10, stop_reason="budget")
    legacy = TrialRecord("5", 5, {}, metrics={"val_accuracy": 0.90}, epochs=3)  # stored before max_epochs existed
    assert [r.fully_trained for r in (two_epochs, pruned, full, early, cut, legacy)] == [
        False, False, True, True, False, True]
    records = [two_epochs, pruned, full, early, cut, legacy]
    assert [r.trial_id for r in ranked_trials(records, "val_accuracy", "max")] == ["2", "3", "5", "4", "1", "0"]
    assert best_trial(records, "val_accuracy", "max") is full
    assert outranks(full, pruned, "val_accuracy", "max") and not outranks(pruned, full, "val_accuracy", "max")
    assert outranks(early, None, "val_accuracy", "max") and not outranks(full, full, "val_accuracy", "max")
    # with no fully trained trial, the best partial one is still the best
    assert best_trial([two_epochs, pruned], "val_accuracy", "max") is pruned
