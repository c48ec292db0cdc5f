"""``strategy: auto``: a budget-aware search that ends with fully trained models.

* **Proposals**: first a small portfolio of configurations known to train well on small
  images, projected onto the spec's space (:mod:`automnist.strategies.portfolio`), then
  optuna's TPE sampler (multivariate, seeded; random for the first few trials) over the
  spec's space, asked define-by-run (:func:`automnist.space.suggest`).
* **Multi-fidelity that keeps its training**: every trial trains epoch by epoch toward
  ``search.epochs`` and reports its objective after each epoch to optuna's
  ``SuccessiveHalvingPruner`` (asynchronous successive halving, rungs at
  ``1, factor, factor**2, ...`` epochs).  A trial in the bottom of its rung is stopped
  (``pruned``); one that is promoted simply goes on training the same model, so no
  epoch is ever trained twice.  Each rung reached is stored with the trial.
* **The budget, planned** (:class:`automnist.budget.BudgetPlan`): the cost of an epoch is
  measured per configuration as the search goes, and predicted for a new one from its
  size (forward multiply-adds per image, :mod:`automnist.cost`) before it trains.  A
  proposal is not trained (recorded ``infeasible``, stop reason ``budget``, and told to
  the sampler as pruned so it learns to avoid the region) when its first rung would not
  fit, or, once a fully trained candidate exists, when its full training would take more
  than a third of the search time left and twice the cheapest configuration's.  A running trial stops (``budget``) when its next
  epoch would eat into the reserve kept for the final model (refitting the best
  configuration on training + validation images for the epochs its learning curve
  supports: ``final.refit``, done by :mod:`automnist.final` after the search), or when it
  would take more than a third of the search time left when it started (nothing can
  prune the first trials, and one costly configuration must not use up the budget).
* **Large data sets** (:mod:`automnist.strategies.subset`): when the budget buys only a few
  dozen epochs over the whole training set, trials train on a fixed stratified subset sized
  from a few seconds' measurement, and a fixed share of the budget then trains the best
  configuration on every training image (its learning rate reduced on plateaus,
  its best validation epoch kept), after a race of its first epochs against the runner-up
  configuration's on every image (:func:`automnist.final.finalists`).  The search ends early
  when it stalls, leaving the final model more time.
* **Fully trained candidates**: the first trial is never pruned (nothing to compare it
  with), the best trial is chosen among fully trained trials first
  (:func:`automnist.records.rank_key`), and the kept model is the ensemble chosen on the
  validation images among the top fully trained trials' models and the refit
  (:mod:`automnist.ensemble`), or with a single member, the refit or, when the budget leaves
  no room for it, the best trial's own model.

Every trial goes through :meth:`SearchContext.evaluate` and the store; a resumed run
replays its stored trials into the sampler (the same seed proposes the same
configurations) and goes on where it stopped.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, Any

from automnist.budget import BudgetPlan
from automnist.callbacks import pruning_callback
from automnist.cost import forward_macs
from automnist.errors import InfeasibleConfig
from automnist.final import refit_epochs
from automnist.records import TrialRecord, best_trial
from automnist.space import suggest
from automnist.strategies.portfolio import starting_points
from automnist.strategies.subset import FINAL_SHARE, search_images, stalled
from automnist.spec import SearchSpec

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["run", "planned_trials", "rung_schedule", "trial_id_of"]

#: Random proposals before TPE models the space (at most a quarter of max_trials).
STARTUP_TRIALS = 6
#: The most of the search time left that one trial may take (see :func:`run`).
TRIAL_SHARE = 1 / 3
#: Proposals in a row too costly for the budget left before the search ends.
MAX_SKIPS = 20
#: A proposal whose full training does not fit in its share of the time left is skipped only
#: when it costs this many times the cheapest configuration measured: when even cheap ones do
#: not fit, the budget is merely tight and successive halving's first rungs still inform.
COSTLY = 2.0


def planned_trials(spec: SearchSpec) -> int | None:
    """None with a time budget (the budget decides), else ``max_trials``."""
    return None if spec.search.time_budget is not None else spec.search.max_trials


def trial_id_of(number: int) -> str:
    """A trial's id in the store: its number in the search (in a shared study, the study's), ``0007``."""
    return f"{number:04d}"


def rung_schedule(top: int, factor: int) -> tuple[int, ...]:
    """The epochs at which successive halving compares trials: ``r, r*factor, ...`` below
    ``top``, then ``top`` (``r`` is chosen so there are at most four rungs below it)."""
    first = max(1, top // factor**3)
    rungs = []
    epoch = first
    while epoch < top:
        rungs.append(epoch)
        epoch *= factor
    return (*rungs, top)


def _study(spec: SearchSpec, seed: int | None = None, **where: Any) -> Any:
    """The study with ``strategy: auto``'s sampler and pruner (``seed`` overrides the
    sampler's; ``where``: ``study_name``, ``storage``, ``load_if_exists`` of a shared study)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = spec.search
    startup = max(2, min(STARTUP_TRIALS, s.max_trials // 4))
    with warnings.catch_warnings():  # multivariate/group TPE are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=s.seed if seed is None else seed, n_startup_trials=startup,
                                             multivariate=True, group=True)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=rung_schedule(s.epochs, s.factor)[0],
                                                    reduction_factor=s.factor, min_early_stopping_rate=0)
    direction = "maximize" if spec.objective.direction == "max" else "minimize"
    return optuna.create_study(sampler=sampler, pruner=pruner, direction=direction, **where)


def _tell(study: Any, trial: Any, record: TrialRecord, objective: str, *, replay: bool) -> None:
    """Tell optuna how a trial ended (replaying a stored trial's curve first on resume)."""
    from optuna.trial import TrialState

    if replay:
        for h in record.history:
            if h["fold"] == 0 and h["metric"] == objective and math.isfinite(h["value"]):
                trial.report(h["value"], h["epoch"])
    value = record.objective(objective) if record.status == "ok" else None
    if record.status == "infeasible":  # unbuildable, or too costly for the budget: a region to avoid
        study.tell(trial, state=TrialState.PRUNED)
    elif value is None or not math.isfinite(value):
        study.tell(trial, state=TrialState.FAIL)
    elif record.fully_trained:
        study.tell(trial, value)
    else:  # pruned or cut by the budget: its score is a lower fidelity's
        study.tell(trial, state=TrialState.PRUNED)


def _too_costly(ctx: SearchContext, plan: BudgetPlan, trial_id: str, values: dict[str, Any],
                rungs: tuple[int, ...], allowance: float, refit: tuple[str | None, int]) -> str | None:
    """Why ``values`` should not be trained with the budget left, or None.

    Its cost is predicted from its size (:func:`automnist.cost.forward_macs`) and what the
    trials so far measured.  Not trained: a configuration whose first rung does not fit
    before the final model's reserve, and, once a fully trained candidate exists, one whose
    full training would take more than its share of the search time left (it would be cut
    short and never be a candidate) and more than :data:`COSTLY` times the cheapest
    configuration's.
    """
    try:
        plan.set_work(trial_id, forward_macs(values, ctx.data.input_shape, ctx.data.n_classes, ctx.spec.model))
    except InfeasibleConfig:
        return None  # the runner records why it cannot be built
    s = ctx.spec.search
    folds = s.cv or 1
    first = plan.trial_seconds(trial_id, rungs[0])
    if first is None:
        return None  # nothing measured yet
    if not plan.fits(first, *refit):
        return (f"too costly for the budget left: its first {rungs[0]} epoch(s) would take about "
                f"{first:.0f} s, more than the search has before the final model's reserve")
    full = folds * (plan.trial_seconds(trial_id, s.epochs) or 0.0)
    cheapest = folds * (plan.trial_seconds(None, s.epochs, cheapest=True) or 0.0)
    candidates = any(t.status == "ok" and t.fully_trained for t in ctx.trials)
    if candidates and full > allowance and full > COSTLY * cheapest:
        return (f"too costly for the budget left: {s.epochs} epochs would take about {full:.0f} s, "
                f"more than the {allowance:.0f} s a trial may take now (the cheapest so far: {cheapest:.0f} s)")
    return None


def run(ctx: SearchContext, shared: Any = None) -> None:
    """Propose, train and prune trials until the budget (less the final model's reserve)
    or ``max_trials`` is spent.

    ``shared``: one worker's part in a study several processes share
    (:class:`automnist.strategies.auto_workers.SharedTrials`): its ``numbers()`` asks the shared
    study for each trial (``pending``) and ends when the whole study has its trials."""
    spec = ctx.spec
    s = spec.search
    objective = spec.objective.name
    rungs = rung_schedule(s.epochs, s.factor)
    n_train = len(ctx.data.y_train)
    held_out = 1.0 / s.cv if s.cv else spec.data.validation_split
    n_fit = round(n_train * (1.0 - held_out))
    # a subset of a large data set (None: all), and whether the final model trains on all of it;
    # not with --workers (each worker would measure and size its own; the chief makes the final model)
    images, on_all = search_images(ctx, n_fit, ctx.finished_trials()) if shared is None else (None, False)
    plan = BudgetPlan(ctx.deadline, fit_images=images or n_fit, refit_images=n_fit if on_all else n_train,
                      reserve_final=spec.refits, budget=s.time_budget, final_share=FINAL_SHARE if on_all else None,
                      ensemble=spec.ensemble_size)
    ctx.plan = plan
    study = _study(spec) if shared is None else shared.study
    for point in starting_points(spec) if shared is None else ():  # a portfolio of known-good configurations first
        study.enqueue_trial(point, skip_if_exists=True)

    def planned_refit() -> tuple[str | None, int]:
        best = best_trial(ctx.trials, objective, spec.objective.direction)
        if best is None:
            return None, s.epochs
        # the refit is worth keeping once it trains as long as the best trial did (automnist.final)
        return best.trial_id, min(refit_epochs(best, objective, spec.objective.direction), max(1, best.epochs))

    skipped = 0  # proposals in a row too costly for the budget left
    for number in range(s.max_trials) if shared is None else shared.numbers():
        trial_id = trial_id_of(number)
        done = ctx.finished(trial_id)
        if done is None and not ctx.time_left():
            break
        cheapest = plan.trial_seconds(None, rungs[0], cheapest=True)
        if done is None and cheapest is not None and not plan.fits(cheapest, *planned_refit()):
            break  # not even the cheapest configuration's first rung fits before the reserve
        trial = study.ask() if shared is None else shared.pending
        values = suggest(trial, spec)
        started = time.time()
        training = {"seconds": 0.0}
        # no trial may take more than TRIAL_SHARE of the search time left when it starts, so an
        # expensive first configuration (which nothing can prune yet) does not use up the budget
        end = plan.search_deadline(*planned_refit())
        allowance = math.inf if end is None else TRIAL_SHARE * max(0.0, end - started)
        if done is None:
            too_costly = _too_costly(ctx, plan, trial_id, values, rungs, allowance, planned_refit())
            if too_costly is not None:  # not trained: recorded, and the sampler learns to avoid it
                record = TrialRecord(trial_id, number, values, status="infeasible", error=too_costly,
                                     seed=s.seed + number, max_epochs=s.epochs, stop_reason="budget",
                                     started_at=started, ended_at=time.time())
                ctx.add_record(record)
                _tell(study, trial, record, objective, replay=False)
                skipped += 1
                if skipped >= MAX_SKIPS:
                    break
                continue
            skipped = 0

        def report(epoch: int, logs: dict[str, float], seconds: float, trial: Any = trial, trial_id: str = trial_id,
                   clock: dict[str, float] = training) -> str | None:
            clock["seconds"] += seconds
            plan.epoch_done(trial_id, seconds)
            value = logs.get(objective)
            if value is not None and math.isfinite(value):
                trial.report(value, epoch)
                if epoch < s.epochs and trial.should_prune():  # a trial at its last epoch is trained: keep it
                    return "pruned"
            next_epoch = plan.epoch_seconds(trial_id) or 0.0
            if epoch < s.epochs and (not plan.fits(next_epoch, *planned_refit())
                                     or time.time() + next_epoch - started > allowance):
                return "budget"
            return None

        record = ctx.evaluate(trial_id, values, number=number, rung_epochs=rungs, train_images=images,
                              callbacks=lambda fold, report=report: [pruning_callback(report)] if fold == 0 else [])
        if done is None:
            plan.trial_done(time.time() - started, training["seconds"])
        _tell(study, trial, record, objective, replay=done is not None)
        if on_all and (since := stalled(ctx.trials, objective, spec.objective.direction)) is not None:
            plan.ended = f"the search stalled: {since} trials in a row found no better configuration"
            break  # on a subset: the time left trains the final model on every image
