"""Ensembles of a search's models: greedy ensemble selection on the validation images
(Caruana et al. 2004, as AutoGluon does) and one Keras model that averages its members.

A search trains many models and keeps one.  Averaging the predicted probabilities of a few
good ones of different configurations is often better than the best of them (their errors
differ: +0.2 to +1.75 points in ``results/README.md``), and costs no training: the members are the top trials' models, kept as the
search runs.  Which members, and with what weight, is chosen on the validation images the
search already scored them on; the test set is only scored.

* :func:`select_weights`: start from the search's best model, then add, one round at a time
  and with replacement, the member whose addition gives the lowest validation log loss; the
  weights are the counts of the rounds' best prefix.
* :func:`ensemble_model`: the chosen members in one Keras model (built-in layers only, so
  ``best.keras`` loads with ``safe_mode`` and predicts like any single model).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from automnist.artifacts import MODEL_FILE, member_path, save_best_model
from automnist.records import TrialRecord, ranked_trials

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["choose_ensemble", "select_weights", "ensemble_probabilities", "ensemble_model", "ensemble_summary",
           "log_loss", "ROUNDS"]

#: Rounds of greedy selection (with replacement): weights are multiples of ``1 / ROUNDS`` at finest.
ROUNDS = 20


def log_loss(prob: np.ndarray, y: np.ndarray) -> float:
    """The mean negative log probability of the true class (``y``: class indices)."""
    p = np.asarray(prob, dtype=np.float64)[np.arange(len(y)), np.asarray(y, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(p, 1e-7, 1.0))))


def ensemble_probabilities(probs: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The ensemble's class probabilities: the (weighted) mean of its members'."""
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    return (np.tensordot(w / w.sum(), stack, axes=1)).astype(np.float32)


def select_weights(val_probs: Mapping[str, np.ndarray], y_val: np.ndarray, rounds: int = ROUNDS) -> dict[str, float]:
    """Greedy ensemble selection with replacement (Caruana et al. 2004).

    ``val_probs``: each candidate's probabilities on the validation images, the search's best
    first (the selection starts from it).  Each round adds the candidate (possibly one already
    in) whose addition gives the lowest validation log loss; the rounds' prefix with the lowest
    loss is kept.  Returns each chosen candidate's weight (summing to 1), in ``val_probs``'
    order; ``{best: 1.0}`` when no addition helps.
    """
    names = list(val_probs)
    if not names:
        raise ValueError("select_weights: no candidates")
    probs = {n: np.asarray(val_probs[n], dtype=np.float64) for n in names}
    y = np.asarray(y_val, dtype=np.int64)
    counts = {names[0]: 1}
    total = probs[names[0]].copy()
    best_counts, best_loss = dict(counts), log_loss(total, y)
    for r in range(2, max(1, rounds) + 1):
        losses = {n: log_loss((total + probs[n]) / r, y) for n in names}
        pick = min(names, key=lambda n: (losses[n], names.index(n)))  # ties: the higher ranked
        total += probs[pick]
        counts[pick] = counts.get(pick, 0) + 1
        if losses[pick] < best_loss - 1e-12:
            best_counts, best_loss = dict(counts), losses[pick]
    n = sum(best_counts.values())
    return {name: best_counts[name] / n for name in names if name in best_counts}


def ensemble_model(models: Sequence[Any], weights: Sequence[float], name: str = "ensemble") -> Any:
    """One Keras model whose output is the weighted mean of ``models``' outputs (they take the
    same input).  Only built-in layers, so it saves and loads like any model."""
    import keras

    if len(models) != len(weights) or not models:
        raise ValueError("ensemble_model: one weight per model, at least one model")
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    inputs = keras.Input(tuple(models[0].input_shape[1:]), name="image")
    outputs = []
    for i, (model, weight) in enumerate(zip(models, w)):
        model.name = f"member_{i}"  # nested models need unique names
        outputs.append(keras.layers.Rescaling(float(weight), name=f"weight_{i}")(model(inputs)))
    mean = outputs[0] if len(outputs) == 1 else keras.layers.Add(name="weighted_mean")(outputs)
    return keras.Model(inputs, mean, name=name)


def choose_ensemble(ctx: SearchContext, refit: dict[str, Any]) -> dict[str, Any]:
    """Choose the ensemble's members and weights on the validation images
    (:func:`automnist.ensemble.select_weights`) among the top trials' models and the final
    model, keep it as ``best.keras`` when it has more than one member, and score it on the
    test set (which is only scored, never used to choose).

    Candidates, best first: the final model trained on the training split (when the search
    ran on a subset and that model was kept) and the models of its configuration trained from
    other seeds in the time it left (:func:`automnist.final._more_members`), then the top
    ``final.ensemble`` fully trained trials' models (kept as the search ran).  A refit on
    training + validation images has no validation score of its own: it joins the chosen
    ensemble as its configuration's twin, with the weight of that configuration's search model.
    Without one validation split (k-fold CV, or a validation split tuned per trial) the members
    are weighted equally."""
    import keras

    spec, ds = ctx.spec, ctx.dataset
    if ctx.deadline is not None and time.time() > ctx.deadline:
        return {"members": [], "kept": False, "error": "no time left in the budget for an ensemble"}
    ranked = [t for t in ranked_trials(ctx.trials, spec.objective.name, spec.objective.direction) if t.fully_trained]
    paths = {t.trial_id: member_path(ctx.run_dir, t.trial_id) for t in ranked[:spec.ensemble_size]}
    paths = {k: p for k, p in paths.items() if p.is_file()}
    twin = None  # the refit on training + validation images, joining as its configuration's twin
    if refit.get("kept") and (ctx.run_dir / MODEL_FILE).is_file():
        if refit.get("on"):  # trained on the training split: scored on the validation images like the others
            more = {str(m["trial_id"]): member_path(ctx.run_dir, str(m["trial_id"]))
                    for m in refit.get("members") or [] if m.get("saved")}  # other seeds, in the time left
            paths = {f"{refit['trial_id']}-all": ctx.run_dir / MODEL_FILE, **more, **paths}
        elif str(refit.get("trial_id")) in paths:
            twin = f"{refit['trial_id']}-refit"
    if len(paths) + (twin is not None) < 2:
        return {"members": list(paths), "kept": False, "error": "fewer than two models to ensemble"}
    models = {k: keras.saving.load_model(p, safe_mode=True) for k, p in paths.items()}
    val = _validation_images(ctx, [t for t in ranked if t.trial_id in paths])
    if val is not None:
        weights = select_weights({k: m.predict(val[0], batch_size=512, verbose=0) for k, m in models.items()}, val[1])
    else:
        weights = {k: 1.0 for k in models}
    if twin is not None and str(refit["trial_id"]) in weights:
        models[twin] = keras.saving.load_model(ctx.run_dir / MODEL_FILE, safe_mode=True)
        weights[twin] = weights[str(refit["trial_id"])]
    total = sum(weights.values())
    weights = {k: round(w / total, 4) for k, w in weights.items()}
    note: dict[str, Any] = {"members": list(weights), "weights": weights,
                            "chosen_on": "validation log loss" if val is not None else "equal weights"}
    if ds.x_test is not None and len(ds.x_test):
        probs = ensemble_probabilities([models[k].predict(ds.x_test, batch_size=512, verbose=0) for k in weights],
                                       list(weights.values()))
        note["test_accuracy"] = float(np.mean(probs.argmax(axis=1) == np.asarray(ds.y_test)))
    else:
        probs = None
    note["kept"] = len(weights) > 1
    if note["kept"]:
        model = ensemble_model([models[k] for k in weights], list(weights.values()))
        save_best_model(model, ds, ctx.run_dir, "ensemble", prob=probs)
    else:
        note["error"] = "no other model lowered the best's validation loss; the single model is kept"
    del models
    keras.backend.clear_session(free_memory=True)
    return note


def _validation_images(ctx: SearchContext, members: list[TrialRecord]) -> tuple[np.ndarray, np.ndarray] | None:
    """The validation images every member was scored on, or None when they do not share one
    hold-out split (k-fold CV, a validation split tuned per trial)."""
    from automnist.runner import split_indices

    spec = ctx.spec
    if spec.search.cv or any(t.params.get("validation_split") for t in members):
        return None
    _, va = split_indices(ctx.data.y_train, cv=None, validation_split=spec.data.validation_split,
                          seed=spec.search.seed)[0]
    return (ctx.data.x_train[va], np.asarray(ctx.data.y_train)[va]) if len(va) else None


def ensemble_summary(ensemble: dict[str, Any]) -> str:
    """``ensemble of 0007 0.50, 0000 0.25, 0007-refit 0.25 (chosen on validation log loss)``."""
    weights = ensemble.get("weights") or {m: None for m in ensemble.get("members") or []}
    shown = ", ".join(m if w is None else f"{m} {w:.2f}" for m, w in weights.items())
    how = ensemble.get("chosen_on")
    return f"ensemble of {shown}" + (f" (chosen on {how})" if how else "")
