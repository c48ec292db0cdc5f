"""The models kept after a search: the best configuration refit on training + validation
images, and an ensemble of the top trials' models.

``final: {refit: true}`` (the default of ``strategy: auto``) trains the best trial's
configuration once more on every training image (the validation images included) for
the epochs its learning curve supports (:func:`refit_epochs`), inside what is left of
the time budget, and keeps it as ``best.keras`` (when the budget cuts it short of the
search's best trial's epochs, the search's best model stays the kept one).
``final: {ensemble: K}`` (5 by default with ``strategy: auto``) then chooses, on the
validation images, an ensemble among the top ``K`` fully trained trials' models (kept as
the search runs) and the final model, and keeps it as ``best.keras`` when it has more than
one member (:func:`automnist.ensemble.choose_ensemble`).  What was done is returned and
stored in the run's config under ``final``; the report shows the search's best, the
refit and the ensemble on the test set side by side.

When ``strategy: auto`` compared configurations on a subset of a large training set
(:mod:`automnist.strategies.subset`), the refit is instead a longer training of the best
configuration on every training image, inside the share of the budget kept for it, with
the validation images choosing its best epoch and whether it is kept; once it has
converged, the time it leaves trains more models of its configuration from other seeds,
candidates of the ensemble (:func:`_more_members`).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from automnist.artifacts import ENSEMBLE_DIR, member_path, save_best_model, save_provisional_best, settle_best
from automnist.budget import SAFETY
from automnist.callbacks import plateau_callback, progress_checkpoint
from automnist.ensemble import choose_ensemble, ensemble_probabilities, ensemble_summary
from automnist.records import TrialRecord, fit_epochs, objective_direction, ranked_trials, trained_score
from automnist.runner import run_trial
from automnist.spec import EarlyStoppingSpec

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["refit_epochs", "finish", "ensemble_probabilities", "long_training", "finalists", "race_summary",
           "members_summary",
           "ensemble_summary", "kept_model", "ensemble_seconds", "ENSEMBLE_DIR", "LONG_EPOCHS", "RACE_EPOCHS",
           "MEMBER_AUGMENTATION"]

#: When the search compared configurations on a subset of the training images, the final
#: model trains on all of them for up to this many times ``search.epochs`` epochs.
LONG_EPOCHS = 5
#: Before that final model, the search's two best configurations train this many epochs each on
#: every image and the one ahead goes on (:func:`_race`), when the best's final training would
#: hold at least :data:`RACE_MIN_EPOCHS` epochs.
RACE_EPOCHS = 2
RACE_MIN_EPOCHS = 8
RACE_DIR = "final-race"
#: The final model on every image has converged when its validation score has not improved
#: for this many epochs (its learning rate, divided by 5 whenever the validation loss stalls
#: for 2 epochs, has by then been cut several times): it stops and leaves the time to another member.
CONVERGED_EPOCHS = 8
#: At most this many more models of the final configuration (other seeds) are trained on
#: every image, in the time the first leaves, as candidates of the ensemble.
MORE_MEMBERS = 3
#: Every other one of them (the first included) trains on images shifted at random by up to
#: this fraction of their size, when the configuration does not augment its images already:
#: it errs on other images than the first, which its average gains from (see :func:`_more_members`).
MEMBER_AUGMENTATION = {"shift": 0.08}


def refit_epochs(record: TrialRecord, objective: str, direction: str | None = None) -> int:
    """The epochs ``record``'s learning curve supports: the epoch early stopping kept, or the
    epoch with its best validation ``objective`` (fold mean).  A trial cut short (pruned or
    by the budget) has not shown where its curve peaks: its planned ``max_epochs``."""
    if "best_epoch" in record.metrics and math.isfinite(record.metrics["best_epoch"]):
        return max(1, round(record.metrics["best_epoch"]))
    if not record.fully_trained and record.max_epochs > record.epochs:
        return record.max_epochs
    curve: dict[int, list[float]] = {}
    for h in record.history:
        if h["metric"] == objective and math.isfinite(h["value"]):
            curve.setdefault(int(h["epoch"]), []).append(float(h["value"]))
    if not curve:
        return max(1, record.epochs)
    sign = 1.0 if objective_direction(objective, direction) == "max" else -1.0
    epochs = sorted(curve)
    means = [sign * float(np.mean(curve[e])) for e in epochs]
    return epochs[int(np.argmax(means))]


def finish(ctx: SearchContext) -> dict[str, Any]:
    """Refit and/or ensemble after the search, as the spec's ``final:`` says.

    Without either, a search with k-fold CV still trains and saves one model of the best
    configuration (the folds kept none).

    Returns
    -------
    dict
        ``search_best`` (the trial, its objective and test accuracy), and when done,
        ``refit`` (epochs, images, seconds, test accuracy and loss) and ``ensemble``
        (members, weights, test accuracy, whether it is the kept model); empty when nothing
        was done.
    """
    spec, best = ctx.spec, ctx.best
    if best is None or best.status != "ok":
        return {}
    if not (spec.refits or spec.ensemble_size > 1):
        if spec.search.cv:  # k-fold CV kept no single model: train one on the training split
            _refit_cv_best(ctx, best)
        return {}
    note: dict[str, Any] = {"search_best": {
        "trial_id": best.trial_id, spec.objective.name: best.objective(spec.objective.name),
        "test_accuracy": best.metrics.get("test_accuracy"), "epochs": best.epochs, "images": best.images}}
    # the ensemble comes last: the final model's training leaves it the time it is planned to take
    end = None if ctx.deadline is None else ctx.deadline - ensemble_seconds(ctx)
    if spec.refits:
        note["refit"] = _refit(ctx, best, end)
    if spec.ensemble_size > 1:
        try:
            note["ensemble"] = choose_ensemble(ctx, note.get("refit") or {})
        except Exception as exc:  # noqa: BLE001 - the kept model (refit or search's best) stays as it was
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            note["ensemble"] = {"members": [], "kept": False,
                                "error": f"the ensemble failed ({why}); the single model is kept"}
    return note


def ensemble_seconds(ctx: SearchContext) -> float:
    """The time kept for choosing and saving the ensemble after the final model, for the
    members the search kept (:meth:`automnist.budget.BudgetPlan.ensemble_seconds`; none
    without a plan)."""
    if ctx.plan is None:
        return 0.0
    return ctx.plan.ensemble_seconds(members=len(list((ctx.run_dir / ENSEMBLE_DIR).glob("*.keras"))))


def _epochs_that_fit(ctx: SearchContext, best: TrialRecord, epochs: int, end: float | None) -> int:
    """How many of ``epochs`` refit epochs end before ``end``, judged by what an epoch
    of ``best`` cost (scaled to the refit's images; one epoch more for tracing the graph)."""
    if end is None:
        return epochs
    left = end - time.time()
    if ctx.plan is not None and ctx.plan.refit_seconds(best.trial_id, 1) is not None:
        return ctx.plan.refit_epochs_within(best.trial_id, left, epochs)  # the strategy's own measurements
    trained = fit_epochs(best) or best.epochs or 1
    per_epoch = best.duration_s / trained * len(ctx.data.y_train) / max(1, best.images or len(ctx.data.y_train))
    return max(0, min(epochs, int(left / (SAFETY * per_epoch)) - 1))


def _refit(ctx: SearchContext, best: TrialRecord, end: float | None) -> dict[str, Any]:
    if ctx.plan is not None and ctx.plan.final_share is not None:
        return _train_on_all(ctx, best, end)  # the search compared configurations on a subset
    planned = refit_epochs(best, ctx.spec.objective.name, ctx.spec.objective.direction)
    epochs = _epochs_that_fit(ctx, best, planned, end)
    out: dict[str, Any] = {"trial_id": best.trial_id, "planned_epochs": planned}
    if epochs < min(planned, best.epochs):  # no time left to train as long as the search's best did
        return {**out, "status": "skipped", "epochs": 0, "kept": False,
                "error": f"only {epochs} of {planned} epochs fit in the budget left; the search's best model is kept"}

    def keep(record: TrialRecord) -> bool:
        # cut short by the budget, the refit is kept only if it still trained as long as the search's best
        return record.status == "ok" and (record.stop_reason != "budget" or record.epochs >= best.epochs)

    record = _train_final(ctx, best, "refit", keep, out, epochs=epochs, holdout=False, deadline=end)
    if record.error:
        out["error"] = record.error + ("; the search's best model is kept instead" if not out["kept"] else "")
    return out


def _train_final(ctx: SearchContext, best: TrialRecord, suffix: str, keep: Callable[[TrialRecord], bool],
                 out: dict[str, Any], **how: Any) -> TrialRecord:
    """Train ``best``'s configuration as the final model (trial id ``<best>-<suffix>``; ``how``:
    :func:`automnist.runner.run_trial`'s arguments), save it as the kept model when ``keep``
    says so, and add what it did to ``out``."""
    t0 = time.time()

    def save(model: Any, record: TrialRecord) -> None:
        if keep(record):
            save_best_model(model, ctx.dataset, ctx.run_dir, f"{best.trial_id}-{suffix}")

    record = _run_final(ctx, best, suffix, on_model=save, **how)
    out.update({"status": record.status, "epochs": record.epochs, "images": record.images,
                "seconds": round(time.time() - t0, 2), "test_accuracy": record.metrics.get("test_accuracy"),
                "test_loss": record.metrics.get("test_loss"), "kept": keep(record)})
    return record


def _run_final(ctx: SearchContext, best: TrialRecord, suffix: str, params: dict[str, Any] | None = None,
               **how: Any) -> TrialRecord:
    """Train ``best``'s configuration (or ``params``) as a final model does (trial id
    ``<best>-<suffix>``, the search's validation split and seeds; ``how``:
    :func:`automnist.runner.run_trial`'s other arguments)."""
    how.setdefault("seed", best.seed)
    return run_trial(best.params if params is None else params, ctx.data, trial_id=f"{best.trial_id}-{suffix}",
                     model=ctx.spec.model, validation_split=ctx.spec.data.validation_split,
                     split_seed=ctx.spec.search.seed, **how)


def _train_on_all(ctx: SearchContext, best: TrialRecord, end: float | None) -> dict[str, Any]:
    """The search ran on a subset of the training images (:mod:`automnist.strategies.subset`):
    train the best configuration on every image of the training split, for as many epochs as
    the rest of the budget allows (at most :data:`LONG_EPOCHS` times ``search.epochs``; the
    deadline ends it, the prediction from the subset's epochs only decides whether one fits), its
    learning rate reduced when the validation loss stalls, keeping the weights of its best
    epoch on the validation images.  It is kept when it scores better than the search's best on
    those same validation images (the test set is only scored); it is ``best.keras`` as it trains
    once it is ahead (:func:`~automnist.callbacks.progress_checkpoint`)."""
    spec, plan = ctx.spec, ctx.plan
    objective = spec.objective.name
    planned = LONG_EPOCHS * spec.search.epochs
    left = math.inf if end is None else end - time.time()
    searched = best.objective(objective)
    out: dict[str, Any] = {"trial_id": best.trial_id, "planned_epochs": planned, "on": "all training images"}
    if plan is not None and plan.ended:
        out["search_ended"] = plan.ended
    if plan is not None and plan.refit_epochs_within(best.trial_id, left, 1) < 1:
        return {**out, "status": "skipped", "epochs": 0, "kept": False,
                "error": "no epoch on every training image fits in the budget left; the search's best model is kept"}
    monitor = objective if objective.startswith("val_") else "val_loss"
    sign = 1.0 if objective_direction(objective, spec.objective.direction) == "max" else -1.0

    def keep(record: TrialRecord) -> bool:
        value = trained_score(record, objective)
        return value is not None and (searched is None or sign * value > sign * searched)

    # the epochs that fit are only predicted (from the subset's epochs): it trains toward ``planned`` and the
    # deadline ends it, after the epoch that leaves no room for another and for scoring and saving the model
    deadline = None if end is None else end - (plan.overhead() if plan is not None else 0.0)
    chosen, how = best, {**long_training(planned, monitor), "deadline": deadline}
    rivals = finalists(ctx, best)
    if len(rivals) > 1 and (plan is None or plan.refit_epochs_within(best.trial_id, left, RACE_MIN_EPOCHS)
                            >= RACE_MIN_EPOCHS):
        chosen, race = _race(ctx, rivals, deadline, sign)
        if race is not None:  # the winner goes on from its race epochs
            out.update(trial_id=chosen.trial_id, race=race)
            how.update(resume_dir=ctx.run_dir / RACE_DIR / chosen.trial_id, initial_epoch=RACE_EPOCHS)
    plateau, tid = how["callbacks"], f"{chosen.trial_id}-all"  # best.keras as it trains (put back if not kept)
    how["callbacks"] = lambda fold: plateau(fold) + [progress_checkpoint(
        objective, sign, searched, lambda model: save_provisional_best(model, ctx.dataset, ctx.run_dir, tid))]
    record = _train_final(ctx, chosen, "all", keep, out, **how)
    settle_best(ctx.run_dir, out["kept"])
    out.update({objective: record.objective(objective), "best_epoch": record.metrics.get("best_epoch")})
    shutil.rmtree(ctx.run_dir / RACE_DIR, ignore_errors=True)
    if out["kept"] and spec.ensemble_size > 1 and end is not None:
        out["members"] = _more_members(ctx, chosen, record, end, monitor)
    if record.error:
        out["error"] = record.error
    if not out["kept"]:
        out["error"] = (out.get("error") or "no better than the search's best on the validation images") + \
            "; the search's best model is kept"
    return out


def _more_members(ctx: SearchContext, chosen: TrialRecord, first: TrialRecord, end: float,
                  monitor: str) -> list[dict[str, Any]]:
    """Train more models of ``chosen``'s configuration on every training image, from other
    seeds (every other one, the first included, on images shifted at random:
    :data:`MEMBER_AUGMENTATION`), while the time left before ``end`` holds one trained as long
    as ``first`` needed to reach its best epoch (priced at ``first``'s own seconds per epoch,
    stretched by :data:`~automnist.budget.SAFETY`, and one more candidate for the ensemble to
    score).  Each is saved in ``ENSEMBLE_DIR`` as ``<trial>-all<k>`` for
    :func:`automnist.ensemble.choose_ensemble` to weigh on the validation images against the
    first and the search's models.

    The final model stops once it has converged (:data:`CONVERGED_EPOCHS`), often well before
    the budget ends when the search stalled early; models of the same configuration from other
    seeds make different errors, and their average is the cheapest gain left (seed ensembles,
    as AutoGluon's bagged models): on Fashion-MNIST the first model had its best epoch at 29
    of 50 and 10 of 30 minutes were left unused (``results/README.md``, run I).  A model
    trained on shifted images errs on other images still: with the first model of run J, the
    mean of two seeds scored 92.87% on the test set, of the first and a shifted-image model
    93.23% (each alone 92.7-92.8%).  The ensemble's greedy selection on the validation images
    gives either no weight where it does not help."""
    needed = int(first.metrics.get("best_epoch") or first.epochs)
    trained = fit_epochs(first)
    if first.status != "ok" or needed < 1 or trained < 1:
        return []
    per_epoch = first.duration_s / trained  # its evaluation and saving included: on the safe side
    spec, overhead = ctx.spec, ctx.plan.overhead() if ctx.plan is not None else 0.0
    members: list[dict[str, Any]] = []
    for k in range(2, 2 + MORE_MEMBERS):
        deadline = end - SAFETY * overhead  # the ensemble scores one more candidate
        if SAFETY * (per_epoch * needed + overhead) > deadline - time.time():
            break
        path = member_path(ctx.run_dir, f"{chosen.trial_id}-all{k}")

        def save(model: Any, record: TrialRecord, path: Path = path) -> None:
            if trained_score(record, spec.objective.name) is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                model.save(path)

        shifted = k % 2 == 0 and not chosen.params.get("augmentation")
        params = {**chosen.params, "augmentation": dict(MEMBER_AUGMENTATION)} if shifted else chosen.params
        t0 = time.time()
        record = _run_final(ctx, chosen, f"all{k}", params, seed=chosen.seed + 1000 * (k - 1), on_model=save,
                            deadline=deadline - overhead, **long_training(LONG_EPOCHS * spec.search.epochs, monitor))
        members.append({"trial_id": record.trial_id, "shifted": shifted, "status": record.status,
                        "epochs": record.epochs, "best_epoch": record.metrics.get("best_epoch"),
                        "seconds": round(time.time() - t0, 2),
                        spec.objective.name: record.objective(spec.objective.name),
                        "test_accuracy": record.metrics.get("test_accuracy"), "saved": path.is_file()})
        end = deadline
    return members


def finalists(ctx: SearchContext, best: TrialRecord) -> list[TrialRecord]:
    """The configurations the final model on every image chooses between: the search's best
    and the best fully trained trial of another configuration, when the search has one."""
    spec = ctx.spec
    others = [t for t in ranked_trials(ctx.trials, spec.objective.name, spec.objective.direction)
              if t.status == "ok" and t.fully_trained and t.trial_id != best.trial_id and t.params != best.params]
    return [best, *others[:1]]


def _race(ctx: SearchContext, rivals: list[TrialRecord], deadline: float | None,
          sign: float) -> tuple[TrialRecord, dict[str, Any] | None]:
    """Train each of ``rivals`` :data:`RACE_EPOCHS` epochs on every training image (the final
    model's first epochs, saved in ``RACE_DIR``) and return the one ahead on the validation
    images (ties: the search's best) with every rival's score, or the search's best and None
    when no rival trained its race epochs (the final model then starts afresh).

    A subset of a few thousand images understates what a larger network gains from all of
    them: on Fashion-MNIST the search's best on 6,000 images, one 5x5 block, trained on all
    54,000 scored 0.5 points below the runner-up's two 3x3 blocks trained for the same time
    (``results/README.md``).  The search's ranking is not thrown away, only checked at the
    fidelity the final model trains at; the winner goes on from its saved weights and
    optimizer state, so only the losers' epochs are spent on the check."""
    objective = ctx.spec.objective.name
    scores: dict[str, Any] = {}
    t0 = time.time()
    for rival in rivals:
        record = _run_final(ctx, rival, "race", epochs=RACE_EPOCHS, deadline=deadline,
                            checkpoint_dir=ctx.run_dir / RACE_DIR / rival.trial_id)
        scores[rival.trial_id] = trained_score(record, objective) if record.epochs == RACE_EPOCHS else None
    chosen = rivals[0]
    for rival in rivals[1:]:  # another rival goes on only when strictly ahead of the search's best
        value, lead = scores[rival.trial_id], scores[chosen.trial_id]
        if value is not None and (lead is None or sign * value > sign * lead):
            chosen = rival
    note = {"epochs": RACE_EPOCHS, "objective": objective, "scores": scores, "winner": chosen.trial_id,
            "seconds": round(time.time() - t0, 2)}
    return chosen, note if scores[chosen.trial_id] is not None else None


def members_summary(refit: dict[str, Any]) -> str | None:
    """One line on the more models of the final configuration (:func:`_more_members`), or None."""
    members = [m for m in refit.get("members") or [] if isinstance(m, dict)]
    if not members:
        return None
    shown = ", ".join(f"{m.get('trial_id')}{' on shifted images' if m.get('shifted') else ''} "
                      f"{m.get('epochs')} epochs"
                      + ("" if m.get("test_accuracy") is None else f" (test {m['test_accuracy']:.4f})")
                      for m in members)
    return f"{len(members)} more of its configuration from other seeds in the time left: {shown}"


def race_summary(refit: dict[str, Any]) -> str | None:
    """One line on the race of a final model on every image (:func:`_race`), or None."""
    race = refit.get("race")
    if not isinstance(race, dict):
        return None
    shown = ", ".join(f"{t} {'-' if v is None else f'{v:.4f}'}" for t, v in (race.get("scores") or {}).items())
    return (f"race on every image, {race.get('epochs')} epochs each ({race.get('objective')}): {shown}; "
            f"{race.get('winner')} went on")


def kept_model(final: dict[str, Any]) -> str:
    """Which model of a search's ``final`` note is ``best.keras``: ``ensemble``, ``refit`` or ``search``."""
    if (final.get("ensemble") or {}).get("kept"):
        return "ensemble"
    return "refit" if (final.get("refit") or {}).get("kept") else "search"


def long_training(epochs: int, monitor: str) -> dict[str, Any]:
    """:func:`automnist.runner.run_trial`'s arguments for the final model trained on all images:
    up to ``epochs`` epochs, the learning rate reduced when the validation loss stalls, and the
    weights of the best epoch by ``monitor`` kept; it stops once ``monitor`` has not improved
    for :data:`CONVERGED_EPOCHS` epochs.

    A learning rate decayed linearly to the deadline (budgeted training, Li et al. 2020) was
    tried instead and dropped: on Fashion-MNIST the final model of ``0000`` in
    ``results/README.md`` scored 91.86% with it against 92.48% reduced on plateaus
    (``benchmarks/bench_final_choice.py``; the decayed run had 12 epochs, not 15, as the
    machine was shared during it)."""
    return {"epochs": epochs, "early_stopping": EarlyStoppingSpec(patience=CONVERGED_EPOCHS, monitor=monitor),
            "callbacks": lambda fold: [plateau_callback()]}


def _refit_cv_best(ctx: SearchContext, best: TrialRecord) -> None:
    """Train the best configuration on the training split (hold-out validation as usual)
    and save it: with k-fold CV the search kept no single model."""

    def save(model: Any, record: TrialRecord) -> None:
        save_best_model(model, ctx.dataset, ctx.run_dir, best.trial_id)

    _run_final(ctx, best, "refit", epochs=best.epochs or ctx.spec.search.epochs, cv=None, on_model=save)


