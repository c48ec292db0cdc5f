"""``--tensorboard DIR``: each trial of a search as a TensorBoard run with its per-epoch
metrics and its hyperparameters in the HParams plugin's format, so TensorBoard's HParams
dashboard shows the search (``tensorboard --logdir DIR``).

Layout: ``DIR/<run>/`` holds the experiment's ``hparams_config`` (the searched
hyperparameters with their domains, the metrics), ``DIR/<run>/<trial>/`` one trial's
``hparams`` and scalars (step = epoch; folds averaged; the final metrics, e.g.
``test_accuracy``, at the last epoch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from automnist.bridges.values import epoch_scalars, hparam_values, scalar
from automnist.runs import run_dir
from automnist.spec import ChoiceParam, FloatParam, IntParam

if TYPE_CHECKING:
    from automnist.context import SearchContext
    from automnist.records import TrialRecord
    from automnist.store import Store

__all__ = ["TensorBoardWriter"]


def _domain(p: Any, hp: Any) -> Any:
    if isinstance(p, ChoiceParam):
        values = [scalar(v) for v in p.values]
        return hp.Discrete(values) if len({type(v) for v in values}) == 1 else None
    if isinstance(p, IntParam):
        return hp.IntInterval(int(p.low), int(p.high))
    if isinstance(p, FloatParam):
        return hp.RealInterval(float(p.low), float(p.high))
    return None


class TensorBoardWriter:
    """A :class:`~automnist.context.SearchListener` writing each new trial to ``logdir``."""

    def __init__(self, logdir: str | Path) -> None:
        self.logdir = Path(logdir)
        self._configured: set[str] = set()

    def run_dir(self, run: str) -> Path:
        return run_dir(self.logdir, run)

    def trial_ended(self, ctx: SearchContext, record: TrialRecord) -> None:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        spec = ctx.spec
        scalars = epoch_scalars(record)
        if ctx.run not in self._configured:
            self._configured.add(ctx.run)
            metrics = [spec.objective.name, "val_loss", "val_accuracy", "loss", "accuracy", "test_accuracy"]
            with tf.summary.create_file_writer(str(self.run_dir(ctx.run))).as_default():
                hp.hparams_config(
                    hparams=[hp.HParam(p.name, _domain(p, hp)) for p in spec.tunable],
                    metrics=[hp.Metric(m) for m in dict.fromkeys(metrics)],
                )
        writer = tf.summary.create_file_writer(str(self.run_dir(ctx.run) / run_dir(".", record.trial_id).name))
        with writer.as_default():
            hp.hparams(hparam_values(spec, record.params), trial_id=f"{ctx.run}/{record.trial_id}")
            last = 0
            for metric, by_epoch in scalars.items():
                for epoch, value in by_epoch.items():
                    tf.summary.scalar(metric, value, step=epoch)
                    last = max(last, epoch)
            for metric, value in record.metrics.items():
                if metric not in scalars and isinstance(value, (int, float)):
                    tf.summary.scalar(metric, float(value), step=last)
        writer.close()

    def run_ended(self, store: Store, run: str) -> None:
        """Nothing left to write: each trial's file is closed when the trial ends."""
