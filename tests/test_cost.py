"""A configuration's cost before it trains: multiply-adds per image, and the budget plan
that turns them into seconds and keeps too costly proposals out of a budgeted search."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from automnist.budget import FIXED_WORK, SAFETY, BudgetPlan
from automnist.cost import forward_macs
from automnist.records import TrialRecord
from automnist.spec import parse_spec
from automnist.strategies.auto import _too_costly

CONFIGS = [
    {},  # the seed reports' CNN: valid 3x3 blocks of 32 and 64, dense 128
    {"conv_layers": 3, "filters": [32, 64, 128], "kernel_size": [5, 3, 3], "padding": "same", "convs_per_block": 2,
     "dense_layers": 2, "units": [256, 64]},
    {"conv_layers": 1, "filters": 16, "strides": 2, "padding": "same", "pooling": "none"},
]


def keras_macs(net) -> float:
    """Multiply-adds counted from the built Keras layers themselves."""
    total = 0.0
    for layer in net.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, _ = layer.output.shape
            total += h * w * math.prod(layer.kernel.shape)
        elif kind == "Dense":
            total += math.prod(layer.kernel.shape)
    return float(total)


@pytest.mark.parametrize("config", CONFIGS)
def test_forward_macs_match_the_built_network(config) -> None:
    from automnist.builders import build_model

    net = build_model(config, (28, 28, 1), 10, compile=False)
    assert forward_macs(config, (28, 28, 1), 10) == pytest.approx(keras_macs(net))


def test_the_seed_cnn_by_hand() -> None:
    # conv1 26*26*9*32, conv2 11*11*9*32*64, dense 5*5*64*128, output 128*10
    assert forward_macs({}, (28, 28, 1), 10) == 194_688 + 2_230_272 + 204_800 + 1_280


def test_a_new_configuration_is_priced_by_its_size() -> None:
    plan = BudgetPlan(deadline=None, fit_images=1000, refit_images=1100)
    plan.set_work("a", 1e6)
    plan.epoch_done("a", 4.0)  # first epoch: tracing included
    plan.epoch_done("a", 2.0)
    plan.epoch_done("a", 2.0)
    assert plan.epoch_seconds("a") == pytest.approx(2.0)
    assert plan.tracing() == pytest.approx(2.0)
    plan.set_work("b", 9e6)
    expected = 2.0 * (9e6 + FIXED_WORK) / (1e6 + FIXED_WORK)
    assert plan.epoch_seconds("b") == pytest.approx(expected)
    assert plan.trial_seconds("b", 3) == pytest.approx(3 * expected + 2.0)  # no overhead measured yet
    assert plan.epoch_seconds(None, cheapest=True) == pytest.approx(2.0)
    assert plan.trial_seconds(None, 3, cheapest=True) == pytest.approx(3 * 2.0 + 2.0)


def _ctx(budget_left: float, trials: list[TrialRecord]):
    from automnist.runner import TrialData
    import numpy as np

    spec = parse_spec({"name": "c", "data": {"dataset": "digits"}, "params": {"filters": {"choice": [8, 256]}},
                       "search": {"strategy": "auto", "epochs": 10, "time_budget": 600}})
    data = TrialData(np.zeros((10, 28, 28, 1), "float32"), np.arange(10), None, None, 10)
    plan = BudgetPlan(deadline=time.time() + budget_left, fit_images=1000, refit_images=1100, reserve_final=False)
    return SimpleNamespace(spec=spec, data=data, trials=trials), plan


def test_too_costly_proposals_are_not_trained() -> None:
    cheap = {"filters": 8}
    costly = {"filters": 256}
    done = TrialRecord("0000", 0, cheap, epochs=10, max_epochs=10)
    ctx, plan = _ctx(200.0, [done])
    plan.set_work("0000", forward_macs(cheap, (28, 28, 1), 10))
    for seconds in (1.5, 1.0, 1.0):
        plan.epoch_done("0000", seconds)
    rungs = (1, 3, 9, 10)
    # the cheap configuration fits in its share (10 s of 60), the costly one (~64x the work) does not
    assert _too_costly(ctx, plan, "0001", cheap, rungs, 60.0, (None, 10)) is None
    why = _too_costly(ctx, plan, "0002", costly, rungs, 60.0, (None, 10))
    assert why is not None and "10 epochs would take" in why
    # with no fully trained candidate yet it trains anyway (the budget cuts it short), unless not even
    # its first rung fits before the deadline
    ctx.trials = []
    assert _too_costly(ctx, plan, "0003", costly, rungs, 60.0, (None, 10)) is None
    ctx_short, short = _ctx(20.0, [])
    short._work, short._first, short._costs = plan._work, plan._first, plan._costs
    why = _too_costly(ctx_short, short, "0004", costly, rungs, 60.0, (None, 10))
    assert why is not None and "first 1 epoch(s)" in why


def test_the_ensemble_time_is_kept_on_top_of_the_final_model_share() -> None:
    # a search on a subset keeps a fixed share of the budget for the final model: the ensemble's
    # time comes on top of it, not out of it (a slow machine once left the final model no epoch)
    plan = BudgetPlan(deadline=None, fit_images=1000, refit_images=1100, budget=100.0, final_share=0.45, ensemble=5)
    plan.set_work("a", 1e6)
    for seconds in (3.0, 1.0, 1.0):
        plan.epoch_done("a", seconds)
    for overhead in (1.0, 2.0, 3.0):
        plan.trial_done(5.0 + overhead, 5.0)
    # about a trial's overhead (the median, 2 s) per candidate: the final model and up to 5 members
    assert plan.ensemble_seconds() == pytest.approx(SAFETY * 6 * 2.0)
    assert plan.ensemble_seconds(members=2) == pytest.approx(SAFETY * 3 * 2.0)
    assert plan.ensemble_seconds(members=9) == plan.ensemble_seconds()
    assert plan.reserve("a", 3) == pytest.approx(45.0 + SAFETY * 6 * 2.0)
    # without an ensemble nothing is kept for it; a refit is priced from its epochs
    single = BudgetPlan(deadline=None, fit_images=1000, refit_images=1100, budget=100.0, ensemble=1)
    single._costs, single._first, single._overheads = plan._costs, plan._first, plan._overheads
    assert single.ensemble_seconds() == 0.0
    refit = single.refit_seconds("a", 3)
    assert single.reserve("a", 3) == pytest.approx(SAFETY * refit)
    plan.final_share = None
    assert plan.reserve("a", 3) == pytest.approx(SAFETY * refit + SAFETY * 6 * 2.0)
