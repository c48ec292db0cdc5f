"""Keras Tuner strategies: random, bayesian, hyperband, grid.

Keras Tuner's own oracles choose the configurations; automnist's tuner overrides
``run_trial`` so every trial goes through :meth:`SearchContext.evaluate` (k-fold CV,
budgets, the store, ``clear_session``) and returns its objective to the oracle.
In Keras Tuner's distributed mode (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``; :mod:`automnist.scale`) the chief only serves the oracle and then
reads the workers' trials from the store; every worker asks it for trials, trains them and
writes them to the same store, saving ``best.keras`` only when a trial beats every stored one.

For users who drive Keras Tuner themselves, :mod:`automnist.hypermodel` has a plain
``keras_tuner.HyperModel`` made from a spec.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from automnist.errors import StoreError
from automnist.runs import run_dir, write_text_whole
from automnist.scale.roles import CHIEF, WORKER, current_role, serve_oracle, stored_best
from automnist.space import declare, sklearn_grid
from automnist.spec import SearchSpec

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["run", "planned_trials", "make_oracle"]


def planned_trials(spec: SearchSpec) -> int | None:
    """How many trials the progress bar expects."""
    if spec.search.strategy == "grid":
        n = 1
        for values in sklearn_grid(spec).values():
            n *= len(values)
        return min(n, spec.search.max_trials)
    return spec.search.max_trials


def _budgeted(oracle_cls: type, deadline: float | None, max_trials: int) -> type:
    """An oracle subclass that stops at the time budget (and, for Hyperband, at max_trials)."""

    def populate_space(self: Any, trial_id: str) -> dict[str, Any]:
        from keras_tuner.engine.trial import TrialStatus

        if deadline is not None and time.time() >= deadline:
            return {"status": TrialStatus.STOPPED, "values": None}
        if len(self.trials) >= max_trials:  # Hyperband has no max_trials of its own
            return {"status": TrialStatus.STOPPED, "values": None}
        return oracle_cls.populate_space(self, trial_id)

    return type(f"Budgeted{oracle_cls.__name__}", (oracle_cls,), {"populate_space": populate_space})


def make_oracle(spec: SearchSpec, hp: Any, deadline: float | None = None) -> Any:
    """The Keras Tuner oracle for ``spec.search.strategy`` over the declared space ``hp``."""
    import keras_tuner as kt

    s = spec.search
    objective = kt.Objective(spec.objective.name, direction=spec.objective.direction)
    common = dict(
        objective=objective,
        hyperparameters=hp,
        seed=s.seed,
        tune_new_entries=False,
        allow_new_entries=False,
        # failed and infeasible trials are normal in a search; never abort for them
        max_consecutive_failed_trials=10**9,
    )
    name = s.strategy
    if name == "random":
        cls, extra = kt.oracles.RandomSearchOracle, {"max_trials": s.max_trials}
    elif name == "bayesian":
        cls, extra = kt.oracles.BayesianOptimizationOracle, {"max_trials": s.max_trials}
    elif name == "grid":
        cls, extra = kt.oracles.GridSearchOracle, {"max_trials": s.max_trials}
    elif name == "hyperband":
        cls, extra = kt.oracles.HyperbandOracle, {"max_epochs": s.epochs, "factor": s.factor}
    else:
        raise ValueError(f"search.strategy: {name!r} is not a Keras Tuner strategy")
    return _budgeted(cls, deadline, s.max_trials)(**common, **extra)


def atomic_save_json(path: str, obj: Any) -> str:
    """Keras Tuner's ``utils.save_json``, but a process killed while writing leaves the old file whole.

    Keras Tuner opens ``trial.json`` / ``oracle.json`` for writing (which empties them) and then
    writes: a SIGKILL in between leaves an empty file that ``--resume`` cannot read. This writes
    a temporary file in the same folder and renames it over the old one (``os.replace`` is atomic).
    """
    if "://" in str(path):  # a remote file system (gs://...): Keras Tuner's own writer
        return _KT_SAVE_JSON(path, obj)
    text = json.dumps(obj)
    write_text_whole(path, text)  # the chief's oracle server writes from its threads: one name per thread
    return text


_KT_SAVE_JSON: Any = None


def use_atomic_json() -> None:
    """Make Keras Tuner write its JSON state files with :func:`atomic_save_json` (idempotent)."""
    global _KT_SAVE_JSON
    from keras_tuner.src import utils

    if utils.save_json is not atomic_save_json:
        _KT_SAVE_JSON = utils.save_json
        utils.save_json = atomic_save_json


def run(ctx: SearchContext) -> None:
    """Search with Keras Tuner; every trial goes through ``ctx.evaluate``."""
    import keras_tuner as kt
    from keras_tuner.engine.base_tuner import BaseTuner

    spec = ctx.spec
    role = current_role()
    objective, direction = spec.objective.name, spec.objective.direction
    hp = kt.HyperParameters()
    declare(hp, spec)
    if not hp.space and role is None:
        # nothing to search: one trial of the fixed configuration
        ctx.evaluate("0", spec.default_values(), number=0)
        return
    oracle = make_oracle(spec, hp, ctx.deadline)

    class AutomnistTuner(BaseTuner):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            values = declare(trial.hyperparameters.copy(), spec)
            tuner_values = trial.hyperparameters.values
            epochs = tuner_values.get("tuner/epochs")
            stored = ctx.finished(trial.trial_id) is not None  # the oracle may hand out again a trial it lost track of
            if role is not None:  # other workers' trials count when deciding to save best.keras
                ctx.best = stored_best(ctx.store, ctx.run, objective, direction, [ctx.best] if ctx.best else [])[1]
            # Hyperband: a promoted configuration continues the models of the trial it comes from
            record = ctx.evaluate(trial.trial_id, values, epochs=epochs, number=_number(trial.trial_id),
                                  resume_from=tuner_values.get("tuner/trial_id"),
                                  initial_epoch=int(tuner_values.get("tuner/initial_epoch") or 0),
                                  checkpoint=spec.search.strategy == "hyperband",
                                  rung_epochs=(epochs,) if epochs else ())
            if role is not None:
                print(f"{role.tuner_id}: trial {trial.trial_id} {'kept from the store' if stored else record.status}",
                      flush=True)
            value = record.objective(spec.objective.name) if record.status == "ok" else None
            if value is None or value != value:
                raise kt.errors.FailedTrialError(f"{record.status}: {record.error}")
            return {spec.objective.name: value}

    worker = role is not None and role.kind == WORKER
    use_atomic_json()
    try:
        tuner = AutomnistTuner(
            oracle=oracle,
            hypermodel=None,
            # a worker keeps only its own tuner file; the oracle's state is the chief's
            directory=str(ctx.run_dir / "workers" if worker else ctx.run_dir),
            project_name=run_dir(".", role.tuner_id).name if worker else "tuner",
            overwrite=worker or not ctx.resume,
        )
    except json.JSONDecodeError as e:  # a run killed mid-write by a version before atomic_save_json
        raise StoreError(f"run {ctx.run!r}: a Keras Tuner state file under {ctx.run_dir / 'tuner'} is empty or cut "
                         f"short (the search was killed while writing it), so it cannot be resumed; start it again "
                         f"under a new name (its finished trials stay in the store): {e}") from None
    if role is not None and role.kind == CHIEF:
        tuner.save()
        serve_oracle(tuner.oracle, role)
        tuner.oracle.save()  # Keras Tuner saves a trial's end before it stops counting it as ongoing
        ctx.trials[:], ctx.best = stored_best(ctx.store, ctx.run, objective, direction)
        return
    tuner.oracle.verbose = 0
    tuner.search(verbose=0)


def _number(trial_id: str) -> int | None:
    return int(trial_id) if str(trial_id).isdigit() else None
