"""``strategy: auto`` on a large data set: search on a stratified subset of the training
images, then train the chosen configuration on all of them.

When a time budget buys only a few dozen epochs over the whole training set (Fashion-MNIST's
54,000 training images on 2 cores: about half a minute to a minute an epoch), successive
halving over epochs spends it on trials stopped after one to three epochs, and the model
kept has never trained long.  The number of training images is then the cheaper fidelity
(the issue's and Fabolas' observation, Klein et al. 2017): configurations are compared on a
fixed stratified subset, sized so the search can afford about :data:`TRIAL_EQUIVALENTS` full
trainings of a typical configuration, and a fixed :data:`FINAL_SHARE` of the budget trains
the best of them on every training image (:func:`automnist.final.finish`).

When even that share would not hold a few epochs on every image, the budget is short for
the data set: the search uses all of it on the subset and keeps its own best model.

The subset's size is planned from a measurement, not guessed: before the first trial, the
first starting configuration trains :data:`CALIBRATION_EPOCHS` epochs on
:data:`CALIBRATION_IMAGES` images (a few seconds), which gives this machine's seconds per
image and epoch.  A data set small enough for the budget (the subset would hold most of
it), a search without a time budget or final model, and k-fold CV search on every image,
as before.  A resumed search keeps the subset size its stored trials were trained on.

The search ends early when it has stalled (:func:`stalled`): :data:`STALL_TRIALS` trained
trials in a row found no new best, and the final model, whose epochs on every image are what
a large data set's accuracy needs most, starts with the time left.

The final model trains the search's best configuration, not the cheapest one within one
standard error of it (the one-standard-error rule): tried on Fashion-MNIST
(``benchmarks/bench_final_choice.py``), the cheaper one-block network trained 28 epochs and
scored 91.98% on the test set, the best's two-block network 15 epochs in the same time and
92.48%.  A subset understates what a larger network gains from every image, and it may rank
the larger network second: the search's best and the best other fully trained configuration
first race two epochs each on every image, and the one ahead goes on
(:func:`automnist.final.finalists`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from automnist.builders import resolve_learning_rate
from automnist.callbacks import pruning_callback
from automnist.records import TrialRecord, objective_direction, outranks
from automnist.runner import TrialData, run_trial, subset_indices
from automnist.space import decode
from automnist.strategies.portfolio import starting_points

if TYPE_CHECKING:
    from automnist.context import SearchContext

__all__ = ["search_images", "subset_size", "final_fits", "calibrate", "stalled", "SUBSET_MIN",
           "FINAL_SHARE", "TRIAL_EQUIVALENTS", "STALL_TRIALS"]

#: Never search on fewer training images than this (smaller sets rank CNNs poorly), and
#: consider a subset only when the training split has at least twice as many.
SUBSET_MIN = 6000
#: A subset holding at least this share of the training split is not worth its loss: all images.
FULL_ENOUGH = 0.7
#: The search should afford this many full trainings (``search.epochs`` epochs) of the
#: calibration configuration on its subset; successive halving turns them into many more trials.
TRIAL_EQUIVALENTS = 10
#: The share of the budget kept for training the chosen configuration on every training image.
FINAL_SHARE = 0.45
#: The final model is planned on every image only when its share of the budget holds this many
#: epochs of a configuration :data:`TYPICAL` times as costly as the calibration one; otherwise
#: the budget is too short for the data set, and the search's own (subset) model is kept.
FINAL_EPOCHS_MIN = 3
TYPICAL = 2.0
#: The measurement behind the plan: this many images, this many epochs (the fastest after the
#: first counts).  On Fashion-MNIST the second of 4 epochs took 2.5 ms an image in 2 of 4
#: repeats and the fourth 1.15-1.3 every time: one timed epoch once made the plan think the
#: final model on every image could not fit, and the search kept a model of the subset's.
CALIBRATION_IMAGES = 2048
CALIBRATION_EPOCHS = 4
#: The search on a subset ends once this many trained trials in a row (pruned ones included)
#: have not changed its best trial: the time left goes to the final model.
STALL_TRIALS = 10


def subset_size(n_fit: int, seconds: float, per_image: float, epochs: int) -> int | None:
    """Training images a search of ``seconds`` can compare configurations on, given the seconds
    per image and epoch measured (None: all ``n_fit``)."""
    if n_fit < 2 * SUBSET_MIN or per_image <= 0:
        return None
    size = max(SUBSET_MIN, int(seconds / (TRIAL_EQUIVALENTS * max(1, epochs) * per_image)))
    return None if size >= FULL_ENOUGH * n_fit else size


def calibrate(ctx: SearchContext, values: dict[str, Any]) -> float | None:
    """Seconds per training image and epoch of ``values`` on this machine: its fastest epoch
    after the first of :data:`CALIBRATION_EPOCHS` on :data:`CALIBRATION_IMAGES` stratified
    images (the first also traces the graph, the next ones still vary with the machine by up to
    2x).  None when it cannot train."""
    seconds: list[float] = []

    def report(epoch: int, logs: dict[str, float], took: float) -> None:
        seconds.append(took)

    data = ctx.data
    index = subset_indices(np.arange(len(data.y_train)), data.y_train, CALIBRATION_IMAGES, ctx.spec.search.seed)
    sample = TrialData(data.x_train[index], data.y_train[index], None, None, data.n_classes)
    values = {**resolve_learning_rate(values), "epochs": CALIBRATION_EPOCHS}
    record = run_trial(values, sample, trial_id="calibration", model=ctx.spec.model, epochs=CALIBRATION_EPOCHS,
                       holdout=False, seed=ctx.spec.search.seed, callbacks=lambda fold: [pruning_callback(report)])
    if record.status != "ok" or len(seconds) < CALIBRATION_EPOCHS:
        return None
    return min(seconds[1:]) / len(index)


def final_fits(n_fit: int, seconds: float, per_image: float) -> bool:
    """Whether :data:`FINAL_SHARE` of ``seconds`` trains a typical configuration for
    :data:`FINAL_EPOCHS_MIN` epochs on all ``n_fit`` images."""
    return FINAL_SHARE * seconds >= FINAL_EPOCHS_MIN * TYPICAL * per_image * n_fit


def search_images(ctx: SearchContext, n_fit: int, stored: list[TrialRecord]) -> tuple[int | None, bool]:
    """The training images each trial of this search trains on (None: all ``n_fit``), and
    whether :data:`FINAL_SHARE` of the budget is kept to train the final model on all of them.

    ``stored``: the trials of the run already in the store (a resumed run keeps their size).
    """
    spec = ctx.spec
    s = spec.search
    if ctx.deadline is None or s.cv or not spec.refits or n_fit < 2 * SUBSET_MIN:
        return None, False
    sizes = [t.images for t in stored if t.status == "ok" and t.images]
    if sizes:  # resuming: the subset the stored trials were compared on
        return (sizes[0], True) if sizes[0] < n_fit else (None, False)
    points = starting_points(spec)
    per_image = calibrate(ctx, decode(spec, points[0]) if points else spec.default_values())
    if per_image is None:
        return None, False
    left = max(0.0, ctx.deadline - time.time())
    final = final_fits(n_fit, left, per_image)
    size = subset_size(n_fit, (1.0 - FINAL_SHARE) * left if final else left, per_image, s.epochs)
    return size, final and size is not None


def stalled(trials: Sequence[TrialRecord], objective: str, direction: str | None) -> int | None:
    """How many trained trials in a row have not changed the best (by the search's own rule,
    :func:`automnist.records.best_trial`), when that is :data:`STALL_TRIALS` or more; else None."""
    direction = objective_direction(objective, direction)
    best, since = None, 0
    for t in sorted((t for t in trials if t.status == "ok"), key=lambda t: t.number):
        if outranks(t, best, objective, direction):  # ties keep the earlier trial, as best_trial does
            best, since = t, 0
        else:
            since += 1
    return since if since >= STALL_TRIALS else None

