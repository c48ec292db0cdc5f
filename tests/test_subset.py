"""``strategy: auto`` on a data set large for its budget: trials compared on a stratified
subset of the training images, the chosen configuration then trained on all of them
(automnist.strategies.subset, automnist.final)."""

from __future__ import annotations

import math
import time

import numpy as np

import automnist.final as final_module
import automnist.strategies.subset as subset
from automnist.data import load_dataset
from automnist.final import kept_model
from automnist.records import TrialRecord
from automnist.runner import run_trial, split_indices, subset_indices
from automnist.search import run_search
from automnist.spec import DEFAULTS, parse_spec
from automnist.store import Store

SPACE = {
    "conv_layers": {"choice": [1, 2]},
    "filters": {"choice": [8, 16]},
    "padding": "same",
    "units": {"choice": [16, 32]},
    "learning_rate": {"float": [1e-3, 1e-2], "log": True},
    "batch_size": 32,
}


def test_the_subset_holds_what_the_search_can_afford():
    # 900 s at 0.5 ms an image-epoch, 10 epochs, 10 full trainings: 900 / (10 * 10 * 0.0005) = 18,000
    assert subset.subset_size(54_000, 900.0, 0.0005, 10) == 18_000
    # never fewer than SUBSET_MIN images
    assert subset.subset_size(54_000, 10.0, 0.0005, 10) == subset.SUBSET_MIN
    # a subset holding most of the data set is not worth it: all of it (None)
    assert subset.subset_size(54_000, 3_000.0, 0.0005, 10) is None
    # a training split under twice SUBSET_MIN is never subsampled
    assert subset.subset_size(2 * subset.SUBSET_MIN - 1, 1.0, 0.0005, 10) is None


def test_the_final_model_is_planned_on_all_images_only_when_a_few_epochs_fit():
    # 54,000 images at 0.35 ms: 18.9 s an epoch; 3 epochs of a configuration twice as costly: 113.4 s
    assert subset.final_fits(54_000, 1_800.0, 0.00035)  # 0.45 * 1800 = 810 s
    assert not subset.final_fits(54_000, 240.0, 0.00035)  # 0.45 * 240 = 108 s


def _trial(number: int, score: float, *, epochs: int = 3, status: str = "ok") -> TrialRecord:
    return TrialRecord(f"{number:04d}", number, {}, status=status, metrics={"val_accuracy": score, "val_loss": 1 - score},
                       epochs=epochs, max_epochs=3, stop_reason=None if epochs == 3 else "pruned")


def test_the_search_has_stalled_after_enough_trials_without_a_new_best(monkeypatch):
    monkeypatch.setattr(subset, "STALL_TRIALS", 3)
    trials = [_trial(0, 0.80), _trial(1, 0.85), _trial(2, 0.84), _trial(3, 0.70, epochs=1)]
    assert subset.stalled(trials, "val_accuracy", "max") is None  # two trials since 0001
    trials.append(_trial(4, 0.9, status="infeasible"))  # not trained: does not count
    assert subset.stalled(trials, "val_accuracy", "max") is None
    trials.append(_trial(5, 0.849))
    assert subset.stalled(trials, "val_accuracy", "max") == 3
    trials.append(_trial(6, 0.86))  # a new best starts the count again
    assert subset.stalled(trials, "val_accuracy", "max") is None
    # a pruned trial's higher score does not replace a fully trained best (the search's own rule)
    trials += [_trial(7, 0.95, epochs=1), _trial(8, 0.5), _trial(9, 0.5)]
    assert subset.stalled(trials, "val_accuracy", "max") == 3
    # by loss, 0003 (loss 0.30) is not better than 0006 (0.14) either
    assert subset.stalled(trials, "val_loss", "min") == 3
    assert subset.stalled(trials, "val_loss", None) == 3  # a loss is minimised when no direction is given


def test_subset_indices_are_stratified_seeded_and_inside_the_training_split(digits_arrays):
    x, y, _, _ = digits_arrays
    (tr, va), = split_indices(y, cv=None, validation_split=0.2, seed=0)
    a = subset_indices(tr, y, 500, seed=0)
    assert len(a) == 500 and set(a) <= set(tr) and not set(a) & set(va)
    np.testing.assert_array_equal(a, subset_indices(tr, y, 500, seed=0))
    counts = np.bincount(y[a], minlength=10)
    expected = 500 * np.bincount(y[tr], minlength=10) / len(tr)
    assert np.all(np.abs(counts - expected) <= 1)
    assert subset_indices(tr, y, None, seed=0) is tr and subset_indices(tr, y, len(tr), seed=0) is tr


def test_a_trial_on_a_subset_keeps_the_validation_images(small_data):
    values = {**DEFAULTS, "conv_layers": 1, "filters": 8, "units": 16, "batch_size": 32, "learning_rate": 3e-3,
              "loss": "sparse_categorical_crossentropy"}
    whole = run_trial(values, small_data, trial_id="a", epochs=1, validation_split=0.2, seed=0)
    part = run_trial(values, small_data, trial_id="b", epochs=1, validation_split=0.2, seed=0, train_images=200)
    assert part.status == whole.status == "ok"
    assert part.images == 200 < whole.images == round(0.8 * len(small_data.y_train))
    # the same validation images score both: the split is the search's, only training images are left out
    (_, va), = split_indices(small_data.y_train, cv=None, validation_split=0.2, seed=0)
    assert {h["epoch"] for h in part.history if h["metric"] == "val_accuracy"} == {1}
    for record in (part, whole):  # scored on len(va) images: a whole number of them right
        right = record.metrics["val_accuracy"] * len(va)
        assert abs(right - round(right)) < 1e-3


def test_auto_searches_a_subset_then_trains_the_best_on_every_image(results_dir, monkeypatch):
    # digits are small: lower the thresholds so that this budget buys a subset, as Fashion-MNIST's does
    monkeypatch.setattr(subset, "SUBSET_MIN", 300)
    monkeypatch.setattr(subset, "TRIAL_EQUIVALENTS", 400)
    monkeypatch.setattr(subset, "TYPICAL", 0.1)
    monkeypatch.setattr(subset, "STALL_TRIALS", 2)  # so that it stalls inside a short search
    checkpoints, checkpoint = [], final_module.progress_checkpoint

    def every_epoch(*args, **kwargs):  # the final model's best.keras saves, at every epoch that improves
        checkpoints.append(checkpoint(*args, **{**kwargs, "every": 0.0}))
        return checkpoints[-1]

    monkeypatch.setattr(final_module, "progress_checkpoint", every_epoch)
    spec = parse_spec({"name": "sub", "data": {"dataset": "digits"}, "params": SPACE,
                       "search": {"epochs": 3, "time_budget": 60, "seed": 0, "max_trials": 8}})
    result = run_search(spec, results_dir=results_dir, run_name="s", progress=False)
    trained = [t for t in result.trials if t.status == "ok"]
    (tr, _), = split_indices(load_dataset("digits").y_train, cv=None, validation_split=0.2, seed=0)
    n_fit = len(tr)
    images = {t.images for t in trained}
    assert len(trained) >= 2 and len(images) == 1 and 300 <= min(images) < n_fit
    final = result.final["refit"]
    # the search ended when 2 trained trials in a row had not changed its best, and not before; on a loaded
    # machine its 8 proposals (some skipped as too costly) or its share of the budget may run out first
    assert [k for k in range(1, len(trained)) if subset.stalled(trained[:k], "val_accuracy", "max")] == []
    if final.get("search_ended") is not None:
        assert subset.stalled(trained, "val_accuracy", "max") == 2
        assert final["search_ended"] == "the search stalled: 2 trials in a row found no better configuration"
        assert len(result.trials) < 8
    else:
        assert subset.stalled(trained, "val_accuracy", "max") is None
    race = final.get("race")
    if race is None:
        assert final["trial_id"] == result.final["search_best"]["trial_id"]
    else:  # the search's best raced the best other fully trained configuration on every image, the winner went on
        assert race["objective"] == "val_accuracy"
        assert list(race["scores"])[0] == result.final["search_best"]["trial_id"]
        assert final["trial_id"] == race["winner"] and final["epochs"] > race["epochs"]
    assert final["on"] == "all training images" and final["status"] == "ok"
    assert final["images"] == n_fit and final["epochs"] >= 1
    # kept only when better than the search's best on the same validation images
    searched = result.final["search_best"]["val_accuracy"]
    assert final["kept"] == (final["val_accuracy"] > searched)
    # it was best.keras as it trained from its first epoch ahead of the search's best (kept: there was one)
    saved = [epoch for cb in checkpoints for epoch in cb.saved]
    assert bool(saved) == final["kept"] and all(e < final["epochs"] for e in saved)
    # a kept final model that converged leaves its time to models of its configuration from other seeds
    members = final.get("members") or []
    assert final["kept"] or not members
    assert [m["trial_id"] for m in members] == [f"{final['trial_id']}-all{k}" for k in range(2, 2 + len(members))]
    ensemble = result.final.get("ensemble") or {}
    assert set(ensemble.get("weights") or {}) <= {f"{final['trial_id']}-all", *(m["trial_id"] for m in members),
                                                   *(t.trial_id for t in trained)}
    kept_as = kept_model(result.final)
    assert not (result.run_dir / "best-before").exists()  # the final model's provisional saves are settled
    with np.load(result.run_dir / "predictions.npz") as kept:
        assert str(kept["trial_id"]) == {"ensemble": "ensemble", "refit": f"{final['trial_id']}-all",
                                         "search": result.final["search_best"]["trial_id"]}[kept_as]
        accuracy = float(np.mean(kept["y_prob"].argmax(axis=1) == kept["y_true"]))
    expected = {"ensemble": ensemble.get("test_accuracy"), "refit": final["test_accuracy"],
                "search": result.final["search_best"]["test_accuracy"]}[kept_as]
    assert math.isclose(accuracy, expected, abs_tol=1e-6)
    # the report shows the final model on every image, with the other seeds when it had time for them
    from automnist.report import write_report
    html = write_report(Store(results_dir / "automnist.db"), ["s"], results_dir=results_dir).read_text("utf-8")
    assert "trained on all training images" in html
    assert (f"{len(members)} more of its configuration from other seeds" in html) == bool(members)
    # the trials were stored with the images they trained on
    stored = Store(results_dir / "automnist.db").get_trials("s")
    assert {t.trial_id: t.images for t in stored} == {t.trial_id: t.images for t in result.trials}


def _trained(trial_id: str, params: dict, val: float, *, epochs: int = 3,
             stop_reason: str | None = None) -> TrialRecord:
    return TrialRecord(trial_id, int(trial_id), params, metrics={"val_accuracy": val}, epochs=epochs, max_epochs=3,
                       stop_reason=stop_reason)


def test_the_finalists_are_the_best_and_the_best_fully_trained_other_configuration():
    import types

    from automnist.final import finalists

    a, b, c = ({**DEFAULTS, "units": u} for u in (16, 32, 64))
    trials = [_trained("0000", a, 0.80), _trained("0001", b, 0.95, epochs=1, stop_reason="pruned"),
              _trained("0002", a, 0.85), _trained("0003", c, 0.83), _trained("0004", b, 0.82)]
    ctx = types.SimpleNamespace(spec=parse_spec({"name": "f", "params": SPACE}), trials=trials)
    # a pruned trial's 1-epoch score does not make it a finalist, nor does a repeat of the best's configuration
    assert [t.trial_id for t in finalists(ctx, trials[2])] == ["0002", "0003"]
    assert [t.trial_id for t in finalists(ctx, trials[3])] == ["0003", "0002"]
    alone = types.SimpleNamespace(spec=ctx.spec, trials=trials[:3])
    assert [t.trial_id for t in finalists(alone, trials[2])] == ["0002"]


def test_the_race_on_every_image_sends_on_the_rival_ahead_from_its_race_epochs(digits_arrays, tmp_path):
    import types

    import automnist.final as final
    from automnist.runner import TrialData

    xtr, ytr, xte, yte = digits_arrays
    data = TrialData(xtr, ytr, xte, yte, 10)

    spec = parse_spec({"name": "race", "data": {"dataset": "digits", "validation_split": 0.2}, "params": SPACE,
                       "search": {"epochs": 3, "seed": 0}})
    ctx = types.SimpleNamespace(spec=spec, data=data, run_dir=tmp_path)
    net = {**DEFAULTS, "conv_layers": 1, "filters": 16, "units": 32, "batch_size": 32, "dropout": 0.0}
    # the search's best (listed first) cannot learn in two epochs at this rate; the runner-up can
    slow = _trained("0000", {**net, "learning_rate": 1e-6}, 0.9)
    fast = _trained("0001", {**net, "learning_rate": 1e-2}, 0.8)
    deadline = time.time() + 3600
    chosen, race = final._race(ctx, [slow, fast], deadline=deadline, sign=1.0)
    assert chosen is fast and race["winner"] == "0001" and race["epochs"] == final.RACE_EPOCHS == 2
    scores = race["scores"]
    assert race["objective"] == "val_accuracy" and set(scores) == {"0000", "0001"} and scores["0001"] > scores["0000"] + 0.2
    assert "race on every image, 2 epochs each (val_accuracy): 0000 0." in final.race_summary({"race": race})
    saved = tmp_path / final.RACE_DIR / "0001" / "fold0.keras"
    assert saved.is_file()
    # the winner goes on from its race epochs: epochs 3-4, starting where its second epoch ended
    fresh = run_trial(fast.params, data, trial_id="fresh", validation_split=0.2, seed=fast.seed, epochs=1)
    record = run_trial(fast.params, data, trial_id="on", validation_split=0.2, seed=fast.seed,
                       resume_dir=saved.parent, initial_epoch=2, deadline=deadline,
                       **final.long_training(4, "val_accuracy"))
    losses = {h["epoch"]: h["value"] for h in record.history if h["metric"] == "loss"}
    first = next(h["value"] for h in fresh.history if h["metric"] == "loss")
    assert sorted(losses) == [3, 4] and record.epochs == 4
    assert losses[3] < 0.8 * first
    assert record.metrics["val_accuracy"] >= scores["0001"] - 0.05


def test_the_time_the_final_model_leaves_trains_other_seeds_that_the_ensemble_weighs(tmp_path):
    import types

    import keras

    import automnist.final as final
    from automnist.artifacts import ENSEMBLE_DIR, save_best_model
    from automnist.ensemble import choose_ensemble, ensemble_probabilities
    from automnist.runs import prepare_data

    spec = parse_spec({"name": "more", "data": {"dataset": "digits", "validation_split": 0.2}, "params": SPACE,
                       "search": {"epochs": 2, "seed": 0}})  # a final model gets LONG_EPOCHS * 2 = 10 epochs at most
    ds = prepare_data(spec)
    net = {**DEFAULTS, "conv_layers": 1, "filters": 8, "units": 16, "batch_size": 64, "dropout": 0.0,
           "learning_rate": 1e-2}
    best = _trained("0000", net, 0.9)
    ctx = types.SimpleNamespace(spec=spec, data=ds, dataset=ds, run_dir=tmp_path, trials=[best], best=best,
                                deadline=None, plan=None)

    def save(model, record):
        save_best_model(model, ds, tmp_path, record.trial_id)

    first = final._run_final(ctx, best, "all", on_model=save, deadline=time.time() + 3600,
                             **final.long_training(10, "val_accuracy"))
    assert first.status == "ok" and 1 <= first.metrics["best_epoch"] <= first.epochs <= 10
    # no time left for another model trained as long as the first needed: none
    assert final._more_members(ctx, best, first, time.time(), "val_accuracy") == []
    members = final._more_members(ctx, best, first, time.time() + 3600, "val_accuracy")
    assert [m["trial_id"] for m in members] == [f"0000-all{k}" for k in range(2, 2 + final.MORE_MEMBERS)]
    assert all(m["status"] == "ok" and m["saved"] and 1 <= m["best_epoch"] <= m["epochs"] <= 10 for m in members)
    # every other one (the first included) trained on randomly shifted images: its saved model has the layer
    assert [m["shifted"] for m in members] == [True, False, True]
    assert "3 more of its configuration from other seeds in the time left: 0000-all2 on shifted images " in \
        final.members_summary({"members": members})
    # other seeds: other weights, other predictions on the same test images
    models = {"0000-all": keras.saving.load_model(tmp_path / "best.keras")}
    models.update({m["trial_id"]: keras.saving.load_model(tmp_path / ENSEMBLE_DIR / f"{m['trial_id']}.keras")
                   for m in members})
    for m in members:
        layers = {type(layer).__name__ for layer in models[m["trial_id"]].layers}
        assert ("RandomTranslation" in layers) == m["shifted"]
    probs = {k: m.predict(ds.x_test, batch_size=512, verbose=0) for k, m in models.items()}
    assert all(not np.allclose(probs["0000-all"], probs[m["trial_id"]], atol=1e-3) for m in members)
    # the ensemble chooses among the first and the other seeds on the validation images
    note = choose_ensemble(ctx, {"trial_id": "0000", "on": "all training images", "kept": True, "members": members})
    weights = note["weights"]
    assert set(weights) <= set(models) and math.isclose(sum(weights.values()), 1.0, abs_tol=1e-3)
    assert note["kept"] == (len(weights) > 1)
    mean = ensemble_probabilities([probs[k] for k in weights], list(weights.values()))
    assert math.isclose(note["test_accuracy"], float(np.mean(mean.argmax(axis=1) == ds.y_test)), abs_tol=1e-3)
