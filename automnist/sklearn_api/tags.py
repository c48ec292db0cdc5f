"""The scikeras tags shim: scikit-learn >= 1.6 estimator tags for scikeras' wrappers.

scikeras 0.13 predates scikit-learn's ``__sklearn_tags__`` (1.6).  Its classes inherit
``BaseEstimator`` *before* ``ClassifierMixin``, so ``BaseEstimator.__sklearn_tags__``
answers first and the classifier tags are lost: on scikit-learn >= 1.7
``is_classifier(KerasClassifier(...))`` is silently False (``cross_val_score(cv=10)`` and
``GridSearchCV(cv=10)`` use ``KFold`` instead of ``StratifiedKFold``, ``roc_auc`` scorers
give NaN), and on 1.6 it raises ``AttributeError`` about ``__sklearn_tags__``.

:func:`install_scikeras_tags` (run when :mod:`automnist.sklearn_api.classifier` is
imported) installs ``__sklearn_tags__`` on scikeras' ``BaseWrapper``, ``KerasClassifier``
and ``KerasRegressor``, only where scikeras does not define it, so a fixed scikeras
release is left alone.  The methods translate scikeras' legacy ``_tags`` (``poor_score``,
``multioutput``, ``multilabel``) and set ``estimator_type``,
``classifier_tags``/``regressor_tags`` and ``target_tags.required`` as scikit-learn's own
mixins do.  The patch is deliberately applied to scikeras' classes, not just to
:class:`~automnist.sklearn_api.KerasCNNClassifier`: every ``KerasClassifier`` in the
process (e.g. seed 004's chapter-2 code) gets stratified folds, and
``check_estimator_tags_renamed`` passes for subclasses.  ``KerasCNNClassifier`` also sets
its own tags explicitly, so it does not depend on the shim.

Importing this module imports scikeras, hence Keras and TensorFlow.
"""

from __future__ import annotations

from typing import Any

from scikeras.wrappers import BaseWrapper, KerasClassifier, KerasRegressor

__all__ = ["install_scikeras_tags"]


def _legacy_tags(estimator: Any) -> dict[str, Any]:
    return getattr(estimator, "_tags", {}) or {}


def _base_tags(self: Any) -> Any:
    tags = super(BaseWrapper, self).__sklearn_tags__()
    tags.target_tags.multi_output = bool(_legacy_tags(self).get("multioutput", False))
    return tags


def _classifier_tags(self: Any) -> Any:
    from sklearn.utils import ClassifierTags

    tags = super(KerasClassifier, self).__sklearn_tags__()
    legacy = _legacy_tags(self)
    tags.estimator_type = "classifier"
    tags.classifier_tags = ClassifierTags(
        poor_score=bool(legacy.get("poor_score", False)),
        multi_label=bool(legacy.get("multilabel", False)),
    )
    tags.target_tags.required = True
    return tags


def _regressor_tags(self: Any) -> Any:
    from sklearn.utils import RegressorTags

    tags = super(KerasRegressor, self).__sklearn_tags__()
    tags.estimator_type = "regressor"
    tags.regressor_tags = RegressorTags(poor_score=bool(_legacy_tags(self).get("poor_score", False)))
    tags.target_tags.required = True
    return tags


def install_scikeras_tags() -> None:
    """Give scikeras' wrappers the ``__sklearn_tags__`` scikit-learn >= 1.6 asks for.

    Idempotent; a class that defines ``__sklearn_tags__`` itself is left alone.
    """
    for cls, method in ((BaseWrapper, _base_tags), (KerasClassifier, _classifier_tags),
                        (KerasRegressor, _regressor_tags)):
        if "__sklearn_tags__" not in vars(cls):
            method.__qualname__ = f"{cls.__name__}.__sklearn_tags__"
            method.__doc__ = "Estimator tags (installed by automnist.sklearn_api.tags: scikeras 0.13 lacks them)."
            cls.__sklearn_tags__ = method  # type: ignore[attr-defined]
