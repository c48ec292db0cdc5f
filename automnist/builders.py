"""Hyperparameter values -> compiled ``keras.Model``.

The builders take a complete configuration (see :data:`automnist.spec.DEFAULTS` for every
key) and never look at specs or tuners.  A configuration that cannot fit the input
(e.g. three 2x2 poolings after valid 5x5 convolutions on 8x8 digits) raises
:class:`~automnist.errors.InfeasibleConfig` *before* anything is built, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from automnist.errors import InfeasibleConfig
from automnist.spec import DEFAULTS, LR_FROM_LR_FIND

__all__ = [
    "augmentation_layers",
    "build_model",
    "build_denoiser",
    "check_feasible",
    "conv_plan",
    "learning_rate_for",
    "make_optimizer",
    "per_conv",
    "per_layer",
    "resolve_learning_rate",
    "uses_one_hot",
]


def per_layer(values: Mapping[str, Any], key: str, n: int) -> list[int]:
    """Per-block/per-layer values of ``filters``, ``kernel_size`` or ``units``.

    An int applies to every layer; a list gives one value per layer, its last value
    repeated when the list is shorter than ``n``; ``<key>_<i>`` (1-based) overrides layer i.
    """
    base = values.get(key)
    if isinstance(base, (list, tuple)):
        seq = [int(v) for v in base] or [1]
        out = [seq[min(i, len(seq) - 1)] for i in range(n)]
    else:
        out = [int(base)] * n
    for i in range(n):
        override = values.get(f"{key}_{i + 1}")
        if override is not None:
            out[i] = int(override)
    return out


def per_conv(values: Mapping[str, Any], key: str, n: int) -> list[Any]:
    """Per-convolution values of ``padding`` or ``strides`` inside one block.

    A scalar applies to every convolution; a list gives one value per convolution of each
    block (the same in every block), its last value repeated when shorter than ``n``:
    ``padding: [same, valid]`` is Keras' CIFAR-10 example (a "same" then a "valid"
    convolution in each block).
    """
    base = values.get(key, DEFAULTS[key])
    if isinstance(base, (list, tuple)):
        seq = list(base) or [DEFAULTS[key]]
        return [seq[min(i, len(seq) - 1)] for i in range(n)]
    return [base] * n


def conv_plan(values: Mapping[str, Any], input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """The convolutional blocks with their output sizes, computed without Keras.

    Returns one dict per block: ``filters``, ``kernel``, ``padding`` and ``strides``
    (one entry per convolution of the block), ``in_hw``, ``conv_hw`` (each convolution's
    output size) and ``out_hw`` (after pooling).

    Raises
    ------
    InfeasibleConfig
        When a convolution or pooling would need a larger input than it gets.
    """
    n_blocks = int(values.get("conv_layers", 0))
    per_block = int(values.get("convs_per_block", 1))
    paddings = per_conv(values, "padding", per_block)
    strides = [int(s) for s in per_conv(values, "strides", per_block)]
    pooling = values.get("pooling", "max")
    pool = int(values.get("pool_size", 2))
    filters = per_layer(values, "filters", n_blocks)
    kernels = per_layer(values, "kernel_size", n_blocks)
    h, w = int(input_shape[0]), int(input_shape[1])
    plan = []
    for b in range(n_blocks):
        in_hw = (h, w)
        k = kernels[b]
        conv_hw = []
        for c in range(per_block):
            where = f"conv block {b + 1}, convolution {c + 1}"
            if paddings[c] == "valid":
                if h < k or w < k:
                    raise InfeasibleConfig(
                        f"{where}: a {k}x{k} 'valid' convolution needs an input of at least {k}x{k}, got {h}x{w}"
                    )
                h = (h - k) // strides[c] + 1
                w = (w - k) // strides[c] + 1
            else:
                h = -(-h // strides[c])
                w = -(-w // strides[c])
            conv_hw.append((h, w))
        if pooling != "none":
            if h < pool or w < pool:
                raise InfeasibleConfig(
                    f"conv block {b + 1}: {pool}x{pool} {pooling} pooling needs an input of at least "
                    f"{pool}x{pool}, got {h}x{w}"
                )
            h, w = h // pool, w // pool
        plan.append({"filters": filters[b], "kernel": k, "padding": paddings, "strides": strides,
                     "in_hw": in_hw, "conv_hw": conv_hw, "out_hw": (h, w)})
    return plan


def check_feasible(values: Mapping[str, Any], input_shape: Sequence[int], model: str = "cnn") -> None:
    """Raise :class:`InfeasibleConfig` if ``values`` cannot be built for ``input_shape``."""
    learning_rate_for(values)
    if model == "cnn":
        if int(values.get("conv_layers", 0)) < 1:
            raise InfeasibleConfig("a cnn needs conv_layers >= 1 (use model: mlp for none)")
        conv_plan(values, input_shape)
    loss = values.get("loss")
    if loss == "kl_divergence" and values.get("label_smoothing"):
        raise InfeasibleConfig("kl_divergence does not take label smoothing")


def uses_one_hot(loss: str) -> bool:
    """Whether ``loss`` needs one-hot targets (else integer labels)."""
    return loss != "sparse_categorical_crossentropy"


def learning_rate_for(values: Mapping[str, Any]) -> float:
    """The learning rate of ``values``' optimizer.

    ``learning_rate`` is a number, or a mapping ``{optimizer: learning rate}`` looked up
    with ``values["optimizer"]``.

    Raises
    ------
    InfeasibleConfig
        When the mapping has no entry for the optimizer, or the value is still
        ``"from_lr_find"`` (the search resolves it before training).
    """
    name = values.get("optimizer", DEFAULTS["optimizer"])
    lr = values.get("learning_rate", DEFAULTS["learning_rate"])
    if isinstance(lr, Mapping):
        if name not in lr:
            raise InfeasibleConfig(
                f"learning_rate: the per-optimizer mapping has no entry for optimizer {name!r} "
                f"(it has {', '.join(map(str, lr))})"
            )
        lr = lr[name]
    if lr == LR_FROM_LR_FIND:
        raise InfeasibleConfig(
            f"learning_rate: {LR_FROM_LR_FIND!r} must be resolved to a number before training "
            "(run_search does it; or run `automnist lr-find SPEC --write-spec OUT.yaml`)"
        )
    return float(lr)


def resolve_learning_rate(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` whose per-optimizer ``learning_rate`` mapping is replaced by the
    number for its optimizer (unchanged when it cannot be resolved)."""
    out = dict(values)
    if isinstance(out.get("learning_rate"), Mapping):
        try:
            out["learning_rate"] = learning_rate_for(out)
        except InfeasibleConfig:
            pass
    return out


def make_optimizer(values: Mapping[str, Any]) -> Any:
    """A Keras optimizer from ``optimizer``, ``learning_rate``, ``momentum``, ``nesterov``."""
    import keras

    name = values.get("optimizer", DEFAULTS["optimizer"])
    lr = learning_rate_for(values)
    momentum = float(values.get("momentum", 0.0) or 0.0)
    opt = keras.optimizers
    if name == "adam":
        return opt.Adam(learning_rate=lr)
    if name == "sgd":
        return opt.SGD(learning_rate=lr, momentum=momentum, nesterov=bool(values.get("nesterov", False)))
    if name == "rmsprop":
        return opt.RMSprop(learning_rate=lr, momentum=momentum)
    if name == "adagrad":
        return opt.Adagrad(learning_rate=lr)
    if name == "adadelta":
        return opt.Adadelta(learning_rate=lr)
    if name == "nadam":
        return opt.Nadam(learning_rate=lr)
    if name == "adamax":
        return opt.Adamax(learning_rate=lr)
    raise ValueError(f"optimizer: unknown optimizer {name!r}")


def _loss(name: str) -> Any:
    import keras

    if name == "kl_divergence":
        return keras.losses.KLDivergence()
    if name == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy()
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy()
    raise ValueError(f"loss: unknown loss {name!r}")


def _initializer(name: str) -> Any:
    import keras

    if name == "uniform":  # old Keras' 'uniform': U(-0.05, 0.05), as seed 004 uses
        return keras.initializers.RandomUniform(-0.05, 0.05)
    return name


def _activation(values: Mapping[str, Any]) -> Any:
    import keras

    name = values.get("activation", "relu")
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=float(values.get("leaky_relu_slope", 0.01)))
    return keras.layers.Activation(name)


def augmentation_layers(aug: Mapping[str, Any] | None, seed: int | None = None) -> list[Any]:
    """Keras preprocessing layers for ``augmentation``; they act only while training.

    ``rotation`` and ``shear`` are in degrees, ``shift`` and ``zoom`` fractions of the
    image size, as in ``ImageDataGenerator``.
    """
    import keras

    if not aug:
        return []
    L = keras.layers
    layers: list[Any] = []
    if aug.get("rotation"):
        layers.append(L.RandomRotation(float(aug["rotation"]) / 360.0, fill_mode="nearest", seed=seed))
    if aug.get("shift"):
        s = float(aug["shift"])
        layers.append(L.RandomTranslation(s, s, fill_mode="nearest", seed=seed))
    if aug.get("zoom"):
        z = float(aug["zoom"])
        layers.append(L.RandomZoom(z, z, fill_mode="nearest", seed=seed))
    if aug.get("shear"):
        # RandomShear takes a fraction of the image size; convert the angle with tan.
        f = min(math.tan(math.radians(float(aug["shear"]))), 1.0)
        layers.append(L.RandomShear(x_factor=f, y_factor=f, fill_mode="nearest", seed=seed))
    if aug.get("horizontal_flip"):
        layers.append(L.RandomFlip("horizontal", seed=seed))
    return layers


def build_model(
    values: Mapping[str, Any],
    input_shape: Sequence[int],
    n_classes: int,
    *,
    model: str = "cnn",
    seed: int | None = None,
    compile: bool = True,
) -> Any:
    """Build (and compile) the classifier described by ``values``.

    Parameters
    ----------
    values : mapping
        A complete configuration (every key of :data:`automnist.spec.DEFAULTS`
        that the family uses; missing keys take those defaults).
    input_shape : (h, w, c)
        Image shape.
    n_classes : int
        Number of output classes (softmax).
    model : {"cnn", "mlp"}
        Family.
    seed : int, optional
        Seed for the augmentation layers.
    compile : bool
        Compile with the configured optimizer, loss and ``accuracy``.

    Returns
    -------
    keras.Model

    Raises
    ------
    InfeasibleConfig
        When the configuration cannot fit ``input_shape``.
    """
    import keras

    v = {**DEFAULTS, **dict(values)}
    check_feasible(v, input_shape, model)
    L = keras.layers
    init = _initializer(v["kernel_initializer"])
    inputs = keras.Input(shape=tuple(int(s) for s in input_shape), name="image")
    x = inputs
    for layer in augmentation_layers(v.get("augmentation"), seed):
        x = layer(x)
    if model == "cnn":
        plan = conv_plan(v, input_shape)
        pool_cls = {"max": L.MaxPooling2D, "average": L.AveragePooling2D}.get(v["pooling"])
        for b, block in enumerate(plan):
            for c in range(int(v["convs_per_block"])):
                x = L.Conv2D(
                    block["filters"],
                    block["kernel"],
                    strides=block["strides"][c],
                    padding=block["padding"][c],
                    kernel_initializer=init,
                    use_bias=not v["batch_norm"],
                    name=f"conv{b + 1}_{c + 1}",
                )(x)
                if v["batch_norm"]:
                    x = L.BatchNormalization(name=f"bn{b + 1}_{c + 1}")(x)
                x = _activation(v)(x)
            if pool_cls is not None:
                x = pool_cls(int(v["pool_size"]), name=f"pool{b + 1}")(x)
            if v["conv_dropout"]:
                x = L.Dropout(float(v["conv_dropout"]), name=f"conv_dropout{b + 1}")(x)
    x = L.Flatten(name="flatten")(x)
    n_dense = int(v["dense_layers"])
    for i, units in enumerate(per_layer(v, "units", n_dense)):
        x = L.Dense(units, kernel_initializer=init, use_bias=not v["batch_norm"], name=f"dense{i + 1}")(x)
        if v["batch_norm"]:
            x = L.BatchNormalization(name=f"dense_bn{i + 1}")(x)
        x = _activation(v)(x)
        if v["dropout"]:
            x = L.Dropout(float(v["dropout"]), name=f"dropout{i + 1}")(x)
    outputs = L.Dense(n_classes, activation="softmax", kernel_initializer=init, name="probabilities")(x)
    net = keras.Model(inputs, outputs, name=f"automnist_{model}")
    if compile:
        net.compile(optimizer=make_optimizer(v), loss=_loss(v["loss"]), metrics=["accuracy"])
    return net


def build_denoiser(input_shape: Sequence[int], filters: Sequence[int] = (32, 32), learning_rate: float = 1e-3) -> Any:
    """A convolutional denoising autoencoder (seed 000, Q3).

    Encoder: Conv2D + MaxPooling2D per entry of ``filters``; decoder: Conv2D +
    UpSampling2D in reverse; a sigmoid Conv2D restores the channels.  Trained
    noisy -> clean with binary cross-entropy, as in the Keras blog post the report follows.
    """
    import keras

    h, w, c = (int(s) for s in input_shape)
    depth = len(filters)
    if h % (2**depth) or w % (2**depth):
        raise InfeasibleConfig(
            f"denoiser: {depth} poolings need image sides divisible by {2**depth}, got {h}x{w}"
        )
    L = keras.layers
    inputs = keras.Input(shape=(h, w, c), name="noisy")
    x = inputs
    for i, f in enumerate(filters):
        x = L.Conv2D(f, 3, activation="relu", padding="same", name=f"enc_conv{i + 1}")(x)
        x = L.MaxPooling2D(2, padding="same", name=f"enc_pool{i + 1}")(x)
    for i, f in enumerate(reversed(list(filters))):
        x = L.Conv2D(f, 3, activation="relu", padding="same", name=f"dec_conv{i + 1}")(x)
        x = L.UpSampling2D(2, name=f"dec_up{i + 1}")(x)
    outputs = L.Conv2D(c, 3, activation="sigmoid", padding="same", name="clean")(x)
    net = keras.Model(inputs, outputs, name="automnist_denoiser")
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    return net
