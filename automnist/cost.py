"""What a configuration costs to train, before it is trained: multiply-adds per image.

A budget-aware search has to know, before it starts a trial, whether the trial fits:
the first configurations of a search differ in cost by 50x and more (one block of 32
3x3 filters against three blocks of 128 5x5 ones), so the median cost of the trials
measured so far says little about the next one.  The forward pass's multiply-adds per
image are computed here from the configuration alone (no Keras, no TensorFlow); the
search's :class:`automnist.budget.BudgetPlan` turns them into seconds with what it has
measured (training costs about three forward passes, plus a part that does not grow
with the network, which the plan's measurements absorb).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from automnist.builders import conv_plan, per_layer
from automnist.spec import DEFAULTS

__all__ = ["forward_macs"]


def forward_macs(values: Mapping[str, Any], input_shape: Sequence[int], n_classes: int, model: str = "cnn") -> float:
    """Multiply-adds of one image's forward pass through ``values``' network.

    Convolutions (``h_out * w_out * k * k * c_in * c_out`` each) and dense layers
    (``n_in * n_out``); pooling, activations and batch norm are left out (they are
    linear in the activations' size, which the convolutions dominate).

    Raises
    ------
    automnist.errors.InfeasibleConfig
        When the configuration does not fit ``input_shape`` (:func:`conv_plan`).
    """
    v = {**DEFAULTS, **dict(values)}
    h, w = int(input_shape[0]), int(input_shape[1])
    channels = int(input_shape[2]) if len(input_shape) > 2 else 1
    macs = 0.0
    if model == "cnn":
        for block in conv_plan(v, (h, w, channels)):
            k = int(block["kernel"])
            for conv_h, conv_w in block["conv_hw"]:
                macs += conv_h * conv_w * k * k * channels * int(block["filters"])
                channels = int(block["filters"])
            h, w = block["out_hw"]
        width = h * w * channels
    else:
        width = h * w * channels
    for units in per_layer(v, "units", int(v["dense_layers"])):
        macs += width * int(units)
        width = int(units)
    return macs + width * int(n_classes)
