"""``automnist export RUN --to mlflow``: a stored run as an MLflow experiment named after
it, one MLflow run per trial: its hyperparameters (params), per-epoch metrics (step =
epoch, folds averaged) and final metrics, its status (``FINISHED`` or ``FAILED``, with
automnist's status and error as tags), and the run's kept model (``best.keras``) as an
artifact of the best trial.  Exporting again adds only the trials not yet exported.

``mlflow`` (or ``mlflow-skinny``) is an optional extra, imported only here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automnist.artifacts import MODEL_FILE
from automnist.bridges.values import epoch_scalars, scalar
from automnist.errors import AutomnistError
from automnist.records import best_trial
from automnist.report.describe import objective_of
from automnist.runs import run_dir

if TYPE_CHECKING:
    from automnist.store import Store

__all__ = ["MlflowExport", "export_to_mlflow", "require_mlflow"]

_PARAM_LIMIT = 500  # MLflow's longest parameter value (6000 on recent servers; 500 everywhere)


@dataclass(frozen=True)
class MlflowExport:
    """What :func:`export_to_mlflow` did."""

    experiment: str
    experiment_id: str
    tracking_uri: str
    logged: int
    skipped: int
    model_logged: bool


def require_mlflow() -> Any:
    """The ``mlflow`` module.

    Raises
    ------
    AutomnistError
        One line saying how to install it, when it is not installed.
    """
    try:
        import mlflow
    except ImportError:
        raise AutomnistError(
            "mlflow is not installed; install it with `pip install 'automnist[mlflow]'` (or `pip install mlflow-skinny`)"
        ) from None
    return mlflow


def export_to_mlflow(store: Store, run: str, results_dir: str | Path, tracking_uri: str | None = None) -> MlflowExport:
    """Log run ``run`` of ``store`` to MLflow (see the module docstring).

    Parameters
    ----------
    tracking_uri : str, optional
        Default: ``MLFLOW_TRACKING_URI`` when set, else a local file store
        ``<results_dir>/mlruns``.
    """
    mlflow = require_mlflow()
    from mlflow.entities import RunStatus

    info = store.require_run(run)
    objective, direction = objective_of(info)
    trials = store.get_trials(run)
    best = best_trial(trials, objective, direction)
    model = run_dir(results_dir, run) / MODEL_FILE
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (Path(results_dir) / "mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 keeps local file stores behind this switch ("maintenance mode"); a file
        # store is what was asked for here, and what mlflow-skinny can write without a server
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(run)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(
        run, tags={"automnist.run": run, "automnist.strategy": str(info.get("strategy") or "")})
    done = {r.data.tags.get("automnist.trial_id") for r in client.search_runs([experiment_id], max_results=50000)}
    logged = skipped = 0
    model_logged = False
    for t in trials:
        if t.trial_id in done:
            skipped += 1
            continue
        tags = {"automnist.run": run, "automnist.trial_id": t.trial_id, "automnist.status": t.status,
                "mlflow.runName": f"trial {t.trial_id}"}
        if t.error:
            tags["automnist.error"] = t.error[:5000]
        if t.stop_reason:
            tags["automnist.stop_reason"] = str(t.stop_reason)
        mrun = client.create_run(experiment_id, tags=tags)
        rid = mrun.info.run_id
        for name, value in t.params.items():
            client.log_param(rid, name, str(scalar(value))[:_PARAM_LIMIT])
        for metric, by_epoch in epoch_scalars(t).items():
            for epoch, value in by_epoch.items():
                client.log_metric(rid, metric, value, step=epoch)
        for metric, value in t.metrics.items():
            if isinstance(value, (int, float)) and metric not in ("loss", "accuracy", "val_loss", "val_accuracy"):
                client.log_metric(rid, metric, float(value))
        client.log_metric(rid, "duration_s", float(t.duration_s))
        if best is not None and t.trial_id == best.trial_id and model.is_file():
            client.log_artifact(rid, str(model))
            client.set_tag(rid, "automnist.best", "true")
            model_logged = True
        client.set_terminated(rid, RunStatus.to_string(RunStatus.FINISHED if t.status == "ok" else RunStatus.FAILED))
        logged += 1
    return MlflowExport(run, experiment_id, uri, logged, skipped, model_logged)
