"""The builder for every hyperparameter value the spec allows, on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from automnist.builders import build_denoiser, build_model, check_feasible, conv_plan, per_layer
from automnist.errors import InfeasibleConfig
from automnist.spec import ACTIVATIONS, DEFAULTS, INITIALIZERS, LOSSES, OPTIMIZERS

SHAPE = (8, 8, 1)


def _cfg(**kw):
    return {**DEFAULTS, "conv_layers": 1, "filters": 4, "units": 8, "padding": "same", **kw}


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def _train_step(model, loss):
    x = np.random.default_rng(0).random((16, *SHAPE), dtype=np.float32)
    y = np.arange(16) % 10
    if loss != "sparse_categorical_crossentropy":
        y = np.eye(10, dtype=np.float32)[y]
    out = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(out["loss"])
    return out


def test_seed_reports_parameter_counts_are_reproduced():
    # seed 000: 32/64 filters, 128 dense units, 225,034 parameters on 28x28
    assert build_model(_cfg(conv_layers=2, filters=[32, 64], units=128, padding="valid", dropout=0.5), (28, 28, 1), 10).count_params() == 225_034
    # seed 001: 8/16 filters, 64 units, 27,562 parameters
    assert build_model(_cfg(conv_layers=2, filters=[8, 16], units=64, padding="valid"), (28, 28, 1), 10).count_params() == 27_562
    # seed 004: the 784-397-397-10 MLP
    assert build_model(_cfg(dense_layers=2, units=397), (28, 28, 1), 10, model="mlp").count_params() == 473_631


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation(activation):
    m = build_model(_cfg(activation=activation, leaky_relu_slope=0.08), SHAPE, 10)
    types = _layer_types(m)
    if activation == "leaky_relu":
        leaky = [layer for layer in m.layers if type(layer).__name__ == "LeakyReLU"]
        assert len(leaky) == 2 and all(abs(float(layer.negative_slope) - 0.08) < 1e-9 for layer in leaky)
    else:
        acts = [layer for layer in m.layers if type(layer).__name__ == "Activation"]
        expected = {"swish": "silu"}.get(activation, activation)  # keras names swish "silu"
        assert len(acts) == 2 and {layer.activation.__name__ for layer in acts} == {expected}
    assert "Conv2D" in types
    _train_step(m, "categorical_crossentropy")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_with_learning_rate(optimizer):
    m = build_model(_cfg(optimizer=optimizer, learning_rate=0.02, momentum=0.9, nesterov=True), SHAPE, 10)
    assert type(m.optimizer).__name__.lower() == optimizer
    assert abs(float(m.optimizer.learning_rate.numpy()) - 0.02) < 1e-7
    if optimizer == "sgd":
        assert m.optimizer.momentum == 0.9 and m.optimizer.nesterov is True
    _train_step(m, "categorical_crossentropy")


@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_trains(loss):
    m = build_model(_cfg(loss=loss), SHAPE, 10)
    expected = {"categorical_crossentropy": "CategoricalCrossentropy",
                "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
                "kl_divergence": "KLDivergence"}[loss]
    assert type(m.loss).__name__ == expected
    out = _train_step(m, loss)
    assert 0.0 <= out["accuracy"] <= 1.0


@pytest.mark.parametrize("pooling, layer", [("max", "MaxPooling2D"), ("average", "AveragePooling2D"), ("none", None)])
def test_pooling_types(pooling, layer):
    m = build_model(_cfg(pooling=pooling, pool_size=2), SHAPE, 10)
    types = _layer_types(m)
    if layer:
        assert types.count(layer) == 1 and m.get_layer("pool1").output.shape[1:3] == (4, 4)
    else:
        assert not any("Pooling" in t for t in types)


@pytest.mark.parametrize("padding, side", [("valid", 6), ("same", 8)])
def test_padding(padding, side):
    m = build_model(_cfg(padding=padding, pooling="none", kernel_size=3), SHAPE, 10)
    assert m.get_layer("conv1_1").output.shape[1:3] == (side, side)


def test_depth_filters_kernels_units_per_layer():
    m = build_model(_cfg(conv_layers=2, convs_per_block=2, filters=[4, 8], kernel_size=[3, 2],
                         dense_layers=3, units=[16, 8], conv_dropout=0.25, dropout=0.5), SHAPE, 10)
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [4, 4, 8, 8]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3), (2, 2), (2, 2)]
    dense = [layer for layer in m.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [16, 8, 8, 10]
    drops = sorted(layer.rate for layer in m.layers if type(layer).__name__ == "Dropout")
    assert drops == [0.25, 0.25, 0.5, 0.5, 0.5]


def test_indexed_override_and_per_layer_rules():
    assert per_layer({"filters": [8, 16]}, "filters", 3) == [8, 16, 16]
    assert per_layer({"filters": 8, "filters_2": 32}, "filters", 3) == [8, 32, 8]
    assert per_layer({"units": 64, "units_1": None}, "units", 2) == [64, 64]


def test_batch_norm_and_strides_and_initializers():
    m = build_model(_cfg(batch_norm=True, strides=2, kernel_initializer="uniform"), SHAPE, 10)
    types = _layer_types(m)
    assert types.count("BatchNormalization") == 2  # after the conv and after the dense layer
    assert m.get_layer("conv1_1").use_bias is False and m.get_layer("conv1_1").strides == (2, 2)
    for init in INITIALIZERS:
        build_model(_cfg(kernel_initializer=init), SHAPE, 10)


def test_augmentation_layers_only_change_training_outputs():
    aug = {"rotation": 20, "shift": 0.1, "zoom": 0.1, "shear": 10, "horizontal_flip": True}
    m = build_model(_cfg(augmentation=aug), SHAPE, 10)
    types = _layer_types(m)
    for name in ("RandomRotation", "RandomTranslation", "RandomZoom", "RandomShear", "RandomFlip"):
        assert name in types
    x = np.random.default_rng(1).random((4, *SHAPE), dtype=np.float32)
    inference_a = m(x, training=False).numpy()
    inference_b = m(x, training=False).numpy()
    np.testing.assert_allclose(inference_a, inference_b)  # inactive at inference
    first_aug = m.layers[1]
    assert not np.allclose(first_aug(x, training=True).numpy(), x)  # active while training
    assert np.allclose(first_aug(x, training=False).numpy(), x)


def test_mlp_has_no_conv_and_colour_input_works():
    m = build_model(_cfg(dense_layers=2, units=[32, 16]), (32, 32, 3), 10, model="mlp")
    assert "Conv2D" not in _layer_types(m) and m.input_shape == (None, 32, 32, 3)
    c = build_model(_cfg(conv_layers=2, filters=[8, 16]), (32, 32, 3), 10)
    assert c.get_layer("conv1_1").kernel.shape == (3, 3, 3, 8)


def test_infeasible_configurations_are_rejected_with_reason():
    # three 2x2 poolings after valid 5x5 convolutions on 8x8 digits
    cfg = _cfg(conv_layers=3, kernel_size=5, padding="valid", pool_size=2)
    with pytest.raises(InfeasibleConfig, match=r"conv block 2, convolution 1: a 5x5 'valid' convolution needs an input of at least 5x5, got 2x2"):
        build_model(cfg, SHAPE, 10)
    with pytest.raises(InfeasibleConfig, match="pooling needs an input of at least 2x2, got 1x1"):
        check_feasible(_cfg(conv_layers=4, padding="same"), SHAPE)
    with pytest.raises(InfeasibleConfig, match="conv_layers >= 1"):
        check_feasible(_cfg(conv_layers=0), SHAPE)
    plan = conv_plan(_cfg(conv_layers=3, padding="same"), SHAPE)
    assert [p["out_hw"] for p in plan] == [(4, 4), (2, 2), (1, 1)]


def test_denoiser_shapes_and_infeasible():
    d = build_denoiser((28, 28, 1), filters=(8, 8))
    assert d.output_shape == (None, 28, 28, 1)
    with pytest.raises(InfeasibleConfig, match="divisible by 8"):
        build_denoiser((28, 28, 1), filters=(8, 8, 8))
