"""A ``keras_tuner.HyperModel`` made from a spec, for users who drive Keras Tuner themselves::

    from automnist.hypermodel import SpecHyperModel
    hm = SpecHyperModel(load_spec("search_spaces/demo.yaml"), input_shape=(8, 8, 1), n_classes=10)
    keras_tuner.RandomSearch(hm, objective="val_accuracy", max_trials=3).search(x, y)

``fit`` overrides Keras' defaults with the trial's ``batch_size``, ``epochs`` and
``validation_split``, so they can be searched like any other hyperparameter.  The class
is a real subclass of ``keras_tuner.HyperModel``, defined when first used so that
importing this module does not import Keras Tuner (and TensorFlow).
"""

from __future__ import annotations

from typing import Any

from automnist.builders import build_model
from automnist.runner import fit_model, split_indices, targets_for_loss
from automnist.space import declare
from automnist.spec import SearchSpec

__all__ = ["SpecHyperModel"]


def _define() -> type:
    import keras_tuner as kt

    class SpecHyperModel(kt.HyperModel):
        """A ``keras_tuner.HyperModel`` whose models are the spec's (see the module docstring)."""

        def __init__(self, spec: SearchSpec, input_shape: tuple[int, ...], n_classes: int) -> None:
            super().__init__(name=f"automnist_{spec.name}", tunable=True)
            self.spec = spec
            self.input_shape = tuple(input_shape)
            self.n_classes = int(n_classes)

        def build(self, hp: Any) -> Any:
            return build_model(declare(hp, self.spec), self.input_shape, self.n_classes, model=self.spec.model)

        def fit(self, hp: Any, model: Any, x: Any, y: Any, validation_data: Any = None, **kwargs: Any) -> Any:
            values = declare(hp, self.spec)
            loss = str(values["loss"])
            y_enc = targets_for_loss(y, self.n_classes, loss)
            if validation_data is None:
                vs = float(values.get("validation_split") or self.spec.data.validation_split)
                (tr, va), = split_indices(y, cv=None, validation_split=vs, seed=self.spec.search.seed)
                validation_data = (x[va], y_enc[va])
                x, y_enc = x[tr], y_enc[tr]
            else:
                vx, vy = validation_data
                validation_data = (vx, targets_for_loss(vy, self.n_classes, loss))
            epochs = int(values.get("epochs") or kwargs.pop("epochs", None) or self.spec.search.epochs)
            return fit_model(model, values, x, y_enc, epochs=epochs, validation_data=validation_data,
                             callbacks=kwargs.get("callbacks"), verbose=kwargs.get("verbose", 0))

    SpecHyperModel.__module__ = __name__
    return SpecHyperModel


def __getattr__(name: str) -> Any:
    if name == "SpecHyperModel":
        cls = _define()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
