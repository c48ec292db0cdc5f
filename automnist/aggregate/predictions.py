"""Numbers from one model's predictions on a test set: ROC and precision-recall curves
per class, the confusion matrix and the classification report (scikit-learn metrics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["classification_report_frame", "confusion_frame", "pr_curve_data", "roc_curve_data"]


def _class_names(class_names: Sequence[str] | None, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names: expected {k} names (one per class), got {len(names)}")
    return names


def _check_proba(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(int).ravel()
    y_prob = np.asarray(y_prob, dtype=float)
    if y_prob.ndim != 2 or y_prob.shape[0] != len(y_true):
        raise ValueError(f"y_prob: expected shape (n, k) with n = {len(y_true)}, got {y_prob.shape}")
    return y_true, y_prob


def _per_class(y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None, columns: list[str],
               points: Callable[[np.ndarray, np.ndarray], dict[str, Any] | None]) -> pd.DataFrame:
    """``class`` plus ``columns``: ``points(positives, scores)`` of each class one-vs-rest;
    classes absent from ``y_true`` (or for which ``points`` gives None) are skipped."""
    y_true, y_prob = _check_proba(y_true, y_prob)
    frames = []
    for i, name in enumerate(_class_names(class_names, y_prob.shape[1])):
        positives = y_true == i
        got = points(positives, y_prob[:, i]) if positives.any() else None
        if got is not None:
            frames.append(pd.DataFrame({"class": name, **got}))
    if not frames:
        return pd.DataFrame(columns=["class", *columns])
    return pd.concat(frames, ignore_index=True)


def _labels(y_true: np.ndarray, y_pred: np.ndarray,
            class_names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Integer labels and the class names (``class_names``, else ``0 .. max label``)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    k = len(class_names) if class_names is not None else int(max(y_true.max(), y_pred.max())) + 1
    return y_true, y_pred, _class_names(class_names, k)


def roc_curve_data(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One-vs-rest ROC curve points per class (:func:`sklearn.metrics.roc_curve`).

    Returns
    -------
    DataFrame
        ``class``, ``fpr``, ``tpr``, ``auc`` (:func:`sklearn.metrics.auc`, repeated on
        every row of its class).  Classes absent from ``y_true`` are skipped (ROC is
        undefined without positives).
    """
    from sklearn.metrics import auc, roc_curve

    def points(positives: np.ndarray, scores: np.ndarray) -> dict[str, Any] | None:
        if positives.all():
            return None
        fpr, tpr, _ = roc_curve(positives, scores)
        return {"fpr": fpr, "tpr": tpr, "auc": auc(fpr, tpr)}

    return _per_class(y_true, y_prob, class_names, ["fpr", "tpr", "auc"], points)


def pr_curve_data(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One-vs-rest precision-recall points per class (:func:`sklearn.metrics.precision_recall_curve`).

    Returns
    -------
    DataFrame
        ``class``, ``recall``, ``precision``, ``ap``
        (:func:`sklearn.metrics.average_precision_score`).  Classes absent from
        ``y_true`` are skipped.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    def points(positives: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        precision, recall, _ = precision_recall_curve(positives, scores)
        return {"recall": recall, "precision": precision, "ap": average_precision_score(positives, scores)}

    return _per_class(y_true, y_prob, class_names, ["recall", "precision", "ap"], points)


def confusion_frame(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Confusion matrix (:func:`sklearn.metrics.confusion_matrix`) as a DataFrame.

    ``class_names`` fixes the classes (``0 .. k-1``); without it the classes are
    ``0 .. max label``.  Index ``true`` (rows), columns ``predicted``.
    """
    from sklearn.metrics import confusion_matrix

    y_true, y_pred, names = _labels(y_true, y_pred, class_names)
    k = len(names)
    cm = confusion_matrix(y_true, y_pred, labels=list(range(k)))
    return pd.DataFrame(cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def classification_report_frame(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`sklearn.metrics.classification_report` as a DataFrame.

    Returns
    -------
    DataFrame
        Index: the class names, then ``accuracy``, ``macro avg``, ``weighted avg``;
        columns ``precision``, ``recall``, ``f1-score``, ``support``.  The
        ``accuracy`` row holds the accuracy in ``f1-score`` (as sklearn prints it),
        NaN in precision/recall and the total in ``support``.
    """
    from sklearn.metrics import classification_report

    y_true, y_pred, names = _labels(y_true, y_pred, class_names)
    k = len(names)
    report = classification_report(y_true, y_pred, labels=list(range(k)), target_names=names,
                                   output_dict=True, zero_division=0)
    accuracy = report.pop("accuracy", None)
    frame = pd.DataFrame(report).T[["precision", "recall", "f1-score", "support"]]
    if accuracy is not None:
        acc = pd.DataFrame({"precision": [np.nan], "recall": [np.nan], "f1-score": [accuracy],
                            "support": [float(len(y_true))]}, index=["accuracy"])
        frame = pd.concat([frame.iloc[:k], acc, frame.iloc[k:]])
    frame["support"] = frame["support"].astype(int)
    frame.index.name = "class"
    return frame
