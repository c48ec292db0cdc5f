"""``strategy: auto``: a budget-aware search that ends with fully trained models.

* **Proposals**: optuna's TPE sampler (multivariate, seeded; random for the first few
  trials) over the spec's space, asked define-by-run (:func:`automnist.space.suggest`).
* **Multi-fidelity that keeps its training**: every trial trains epoch by epoch toward
  ``search.epochs`` and reports its objective after each epoch to optuna's
  ``SuccessiveHalvingPruner`` (asynchronous successive halving, rungs at
  ``1, factor, factor**2, ...`` epochs).  A trial in the bottom of its rung is stopped
  (``pruned``); one that is promoted simply goes on training the same model, so no
  epoch is ever trained twice.  Each rung reached is stored with the trial.
* **The budget, planned** (:class:`automnist.budget.BudgetPlan`): the cost of an epoch is
  measured per configuration as the search goes; a new trial starts only when its first
  rung fits, and a running trial stops (``budget``) when its next epoch would eat into
  the reserve kept for the final model (refitting the best configuration on training +
  validation images for the epochs its learning curve supports: ``final.refit``, done
  by :mod:`automnist.final` after the search), or when it would take more than a third
  of the search time left when it started (nothing can prune the first trials, and one
  costly configuration must not use up the budget).
* **Fully trained candidates**: the first trial is never pruned (nothing to compare it
  with), the best trial is chosen among fully trained trials first
  (:func:`automnist.records.rank_key`), and the kept model is the refit or, when the
  budget leaves no room for it, the best trial's own model.

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
from automnist.final import refit_epochs
from automnist.records import TrialRecord, best_trial
from automnist.space import suggest
from automnist.spec import SearchSpec

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["run", "planned_trials", "rung_schedule"]

#: Random proposals before TPE models the space (at most a quarter of max_trials).
STARTUP_TRIALS = 6
#: The most of the search time left that one trial may take (see :func:`run`).
TRIAL_SHARE = 1 / 3


def planned_trials(spec: SearchSpec) -> int | None:
    """None with a time budget (the budget decides), else ``max_trials``."""
    return None if spec.search.time_budget is not None else spec.search.max_trials


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


def _study(spec: SearchSpec) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = spec.search
    startup = max(2, min(STARTUP_TRIALS, s.max_trials // 4))
    with warnings.catch_warnings():  # multivariate/group TPE are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=startup, multivariate=True, group=True)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=rung_schedule(s.epochs, s.factor)[0],
                                                    reduction_factor=s.factor, min_early_stopping_rate=0)
    direction = "maximize" if spec.objective.direction == "max" else "minimize"
    return optuna.create_study(sampler=sampler, pruner=pruner, direction=direction)


def _tell(study: Any, trial: Any, record: TrialRecord, objective: str, *, replay: bool) -> None:
    """Tell optuna how a trial ended (replaying a stored trial's curve first on resume)."""
    from optuna.trial import TrialState

    if replay:
        for h in record.history:
            if h["fold"] == 0 and h["metric"] == objective and math.isfinite(h["value"]):
                trial.report(h["value"], h["epoch"])
    value = record.objective(objective) if record.status == "ok" else None
    if value is None or not math.isfinite(value):
        study.tell(trial, state=TrialState.FAIL)
    elif record.fully_trained:
        study.tell(trial, value)
    else:  # pruned or cut by the budget: its score is a lower fidelity's
        study.tell(trial, state=TrialState.PRUNED)


def run(ctx: SearchContext) -> None:
    """Propose, train and prune trials until the budget (less the final model's reserve)
    or ``max_trials`` is spent."""
    spec = ctx.spec
    s = spec.search
    objective = spec.objective.name
    rungs = rung_schedule(s.epochs, s.factor)
    n_train = len(ctx.data.y_train)
    held_out = 1.0 / s.cv if s.cv else spec.data.validation_split
    plan = BudgetPlan(ctx.deadline, fit_images=round(n_train * (1.0 - held_out)), refit_images=n_train,
                      reserve_final=spec.refits, budget=s.time_budget)
    ctx.plan = plan
    study = _study(spec)

    def planned_refit() -> tuple[str | None, int]:
        best = best_trial(ctx.trials, objective, spec.objective.direction)
        if best is None:
            return None, s.epochs
        # the refit is worth keeping once it trains as long as the best trial did (automnist.final)
        return best.trial_id, min(refit_epochs(best, objective, spec.objective.direction), max(1, best.epochs))

    for number in range(s.max_trials):
        trial_id = f"{number:04d}"
        done = ctx.finished(trial_id)
        first_rung = plan.epoch_seconds(None)
        if done is None and first_rung is not None and not plan.fits(
                first_rung * rungs[0] + plan.overhead(), *planned_refit()):
            break  # not even a first rung fits before the reserve
        if done is None and not ctx.time_left():
            break
        trial = study.ask()
        values = suggest(trial, spec)
        started = time.time()
        training = {"seconds": 0.0}
        # no trial may take more than TRIAL_SHARE of the search time left when it starts, so an
        # expensive first configuration (which nothing can prune yet) does not use up the budget
        end = plan.search_deadline(*planned_refit())
        allowance = math.inf if end is None else TRIAL_SHARE * max(0.0, end - started)

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

        record = ctx.evaluate(trial_id, values, number=number, rung_epochs=rungs,
                              callbacks=lambda fold, report=report: [pruning_callback(report)] if fold == 0 else [])
        if done is None:
            plan.trial_done(time.time() - started, training["seconds"])
        _tell(study, trial, record, objective, replay=done is not None)
