"""One trial: hold-out and k-fold training, statuses, budgets, memory."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from automnist.runner import TrialData, run_trial, split_indices, targets_for_loss
from automnist.spec import DEFAULTS

FAST = {**DEFAULTS, "conv_layers": 1, "filters": 8, "units": 32, "padding": "same", "learning_rate": 3e-3}


def test_holdout_trial_records_metrics_history_and_size(small_data):
    r = run_trial(FAST, small_data, trial_id="7", number=3, epochs=3, seed=1)
    assert r.status == "ok" and r.error is None and r.trial_id == "7" and r.number == 3
    assert r.epochs == 3 and r.n_params == build_count()
    for m in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        assert np.isfinite(r.metrics[m])
    assert r.metrics["val_accuracy"] > 0.5  # 3 epochs on 320 digits learn something
    rows = [h for h in r.history if h["metric"] == "val_accuracy"]
    assert [h["epoch"] for h in rows] == [1, 2, 3] and rows[-1]["value"] == r.metrics["val_accuracy"]
    assert r.folds == [] and r.duration_s > 0 and r.ended_at >= r.started_at


def build_count():
    from automnist.builders import build_model

    return build_model(FAST, (8, 8, 1), 10).count_params()


def test_same_seed_same_result(small_data):
    a = run_trial(FAST, small_data, trial_id="a", epochs=1, seed=5)
    b = run_trial(FAST, small_data, trial_id="b", epochs=1, seed=5)
    assert a.metrics["val_loss"] == b.metrics["val_loss"]


def test_kfold_trial_stores_each_fold_and_mean_std(small_data):
    r = run_trial({**FAST, "loss": "sparse_categorical_crossentropy"}, small_data, trial_id="cv", epochs=1, cv=3)
    assert r.status == "ok" and [f["fold"] for f in r.folds] == [0, 1, 2]
    scores = [f["val_accuracy"] for f in r.folds]
    assert r.metrics["val_accuracy"] == np.mean(scores)
    assert abs(r.metrics["val_accuracy_std"] - np.std(scores, ddof=1)) < 1e-12
    assert {h["fold"] for h in r.history} == {0, 1, 2}


def test_folds_are_stratified_and_depend_only_on_the_split_seed(small_data):
    y = small_data.y_train
    folds = split_indices(y, cv=4, validation_split=0.2, seed=0)
    assert len(folds) == 4
    for tr, va in folds:
        assert not set(tr) & set(va)
        counts = np.bincount(y[va], minlength=10)
        expected = np.bincount(y, minlength=10) / 4  # stratified: each class split evenly over folds
        assert np.all(np.abs(counts - expected) <= 1)
    again = split_indices(y, cv=4, validation_split=0.2, seed=0)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    (tr, va), = split_indices(y, cv=None, validation_split=0.25, seed=0)
    assert len(va) == 100 and len(tr) == 300


def test_infeasible_and_failed_trials_are_recorded_not_raised(small_data):
    r = run_trial({**FAST, "conv_layers": 3, "kernel_size": 5, "padding": "valid"}, small_data, trial_id="i", epochs=1)
    assert r.status == "infeasible" and "5x5 'valid' convolution" in r.error and r.metrics == {}
    r = run_trial({**FAST, "optimizer": "sgd", "learning_rate": 1e3, "activation": "linear_typo"}, small_data,
                  trial_id="f", epochs=1)
    assert r.status == "failed" and "linear_typo" in r.error


def test_divergence_is_a_failed_trial(small_data):
    r = run_trial({**FAST, "optimizer": "sgd", "learning_rate": 1e3, "momentum": 0.9, "activation": "elu",
                   "kernel_initializer": "he_normal"}, small_data, trial_id="d", epochs=3)
    if r.status == "failed":
        assert "diverged" in r.error
    else:  # a network that survives lr=1000 cannot have learned anything
        assert r.metrics["val_accuracy"] < 0.3


@pytest.mark.serial
def test_time_budget_stops_training_and_says_so(small_data):
    r = run_trial(FAST, small_data, trial_id="t", epochs=50, deadline=time.time() + 0.5)
    assert r.status == "ok" and r.epochs < 50 and "time budget" in r.error


def test_labels_encoding():
    y = np.array([0, 2, 1])
    assert targets_for_loss(y, 3, "sparse_categorical_crossentropy").tolist() == [0, 2, 1]
    assert targets_for_loss(y, 3, "kl_divergence").tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]


def test_trial_data_shape(small_data):
    assert small_data.input_shape == (8, 8, 1)
    assert isinstance(small_data, TrialData)


def test_trials_do_not_leave_traced_graphs_registered(small_data):
    """clear_session alone leaks ~6 MB per trial: TF keeps a CustomGradient per trace."""
    from tensorflow.python.framework import ops

    def custom_gradients():
        return {k for k in ops._gradient_registry._registry if str(k).startswith("CustomGradient-")}

    before = custom_gradients()
    for i in range(3):
        assert run_trial(FAST, small_data, trial_id=str(i), epochs=1, seed=i).status == "ok"
    assert custom_gradients() == before


def test_the_deadline_counts_the_first_epoch_only_until_a_later_one_is_seen(monkeypatch):
    """The first epoch also traces the graph: a 30 s first epoch and 10 s later ones leave
    room for one more 10 s epoch 15 s before the deadline (not for a second 30 s one)."""
    import keras

    from automnist import callbacks

    clock = {"now": 1000.0}
    monkeypatch.setattr(callbacks.time, "time", lambda: clock["now"])
    deadline = 1000.0 + 30 + 10 + 10 + 15
    cb = callbacks.deadline_callback(deadline)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False  # fit sets it before the first epoch
    cb.set_model(model)
    cb.set_params({"epochs": 9})
    stopped_after = None
    for epoch, seconds in enumerate((30, 10, 10, 10, 10)):
        cb.on_epoch_begin(epoch)
        clock["now"] += seconds
        cb.on_epoch_end(epoch)
        if cb.model.stop_training:
            stopped_after = epoch + 1
            break
    # after 3 epochs 15 s are left: one more 10 s epoch fits (the first's 30 s no longer counts); after 4, 5 s
    assert stopped_after == 4 and cb.stop_reason == "budget"
    one = callbacks.deadline_callback(1000.0 + 30 + 25)  # after only the first epoch, it is the measure
    one.set_model(cb.model)
    one.set_params({"epochs": 9})
    clock["now"], cb.model.stop_training = 1000.0, False
    one.on_epoch_begin(0)
    clock["now"] += 30
    one.on_epoch_end(0)
    assert cb.model.stop_training and one.stop_reason == "budget"


def _tiny_classifier(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("every", [0.0, 1e9])
def test_the_progress_checkpoint_saves_the_improving_epochs_weights(digits_arrays, every):
    """Every epoch whose validation accuracy beats the floor and the epochs before is saved with
    that epoch's own weights; at most one save every ``every`` seconds (one in all here with 1e9)."""
    from automnist.callbacks import progress_checkpoint

    xtr, ytr, _, _ = digits_arrays
    xva, yva = xtr[-300:], ytr[-300:]
    saved: list[float] = []

    def save(model) -> None:  # the accuracy of the weights handed over, measured again
        saved.append(model.evaluate(xva, yva, verbose=0, batch_size=300)[1])

    floor = 0.5
    cb = progress_checkpoint("val_accuracy", 1.0, floor, save, every=every)
    history = _tiny_classifier(0).fit(xtr[:-300], ytr[:-300], validation_data=(xva, yva), epochs=12, batch_size=64,
                                      verbose=0, callbacks=[cb]).history["val_accuracy"]
    improving, best = [], floor
    for epoch, value in enumerate(history):
        if value > best:
            improving.append(epoch)
            best = value
    assert len(improving) >= 2 and history[0] <= floor  # the floor held back the first epoch
    assert cb.saved == (improving if every == 0.0 else improving[:1])
    assert saved == pytest.approx([history[e] for e in cb.saved], abs=1e-6)


def test_a_provisional_best_model_is_put_back_unless_kept(tmp_path):
    """``best.keras`` replaced by a model still training is restored when that model is not kept,
    left when it is, and removed when there was none before; the set-aside folder never stays."""
    from automnist.artifacts import ASIDE_DIR, MODEL_FILE, save_best_model, save_provisional_best, settle_best

    best = tmp_path / MODEL_FILE
    save_best_model(_tiny_classifier(1), None, tmp_path, "0001")
    before = best.read_bytes()
    for kept in (False, True):
        save_provisional_best(_tiny_classifier(2), None, tmp_path, "0001-all")
        save_provisional_best(_tiny_classifier(3), None, tmp_path, "0001-all")  # a second save keeps the first aside
        provisional = best.read_bytes()
        assert provisional != before and (tmp_path / ASIDE_DIR / MODEL_FILE).read_bytes() == before
        settle_best(tmp_path, kept)
        assert best.read_bytes() == (provisional if kept else before) and not (tmp_path / ASIDE_DIR).exists()
    fresh = tmp_path / "fresh"
    save_provisional_best(_tiny_classifier(2), None, fresh, "0000-all")
    settle_best(fresh, False)
    assert not (fresh / MODEL_FILE).exists() and not (fresh / ASIDE_DIR).exists()


def test_a_model_save_that_fails_leaves_the_kept_model_and_no_temporary_file(tmp_path):
    """``best.keras`` is written beside itself and renamed over (``runs.replaced_whole``): a save
    that fails half-way leaves the kept model byte for byte, and no temporary file."""
    from automnist.artifacts import MODEL_FILE, save_best_model

    save_best_model(_tiny_classifier(1), None, tmp_path, "0001")
    before = (tmp_path / MODEL_FILE).read_bytes()

    class Broken:
        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_best_model(Broken(), None, tmp_path, "0002")
    assert (tmp_path / MODEL_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]
