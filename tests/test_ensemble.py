"""The ensemble kept after a search: greedy selection on the validation images, one Keras
model averaging its members, and ``strategy: auto`` keeping it as ``best.keras`` (real digits)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from automnist.artifacts import ENSEMBLE_DIR
from automnist.builders import build_model
from automnist.ensemble import ensemble_model, ensemble_probabilities, log_loss, select_weights
from automnist.final import kept_model
from automnist.runner import split_indices
from automnist.runs import prepare_data
from automnist.search import run_search
from automnist.spec import parse_spec

SPACE = {
    "conv_layers": {"choice": [1, 2]},
    "filters": {"choice": [8, 16]},
    "padding": "same",
    "units": {"choice": [16, 32]},
    "dropout": {"float": [0.0, 0.3]},
    "learning_rate": {"float": [2e-3, 1e-2], "log": True},
    "batch_size": 32,
}


def _confident(labels: np.ndarray, right: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """Probabilities 0.8 on the true class where ``right``, else 0.8 on the next class."""
    guess = np.where(right, labels, (labels + 1) % n_classes)
    prob = np.full((len(labels), n_classes), 0.2 / (n_classes - 1))
    prob[np.arange(len(labels)), guess] = 0.8
    return prob


def test_select_weights_adds_a_model_that_errs_elsewhere_and_not_a_worse_copy():
    y = np.arange(40) % 3
    first_half = np.arange(40) < 24
    best = _confident(y, first_half | (np.arange(40) >= 32))  # right on 32 of 40
    other = _confident(y, ~first_half | (np.arange(40) < 8))  # right on 24, mostly where best errs
    weights = select_weights({"best": best, "other": other}, y)
    assert set(weights) == {"best", "other"} and sum(weights.values()) == pytest.approx(1.0)
    assert weights["best"] >= weights["other"] > 0
    mixed = ensemble_probabilities([best, other], [weights["best"], weights["other"]])
    assert log_loss(mixed, y) < log_loss(best, y)
    # a model no better anywhere (the best's own predictions, and a uniformly wrong one) adds nothing
    assert select_weights({"best": best, "copy": best.copy(), "wrong": _confident(y, np.zeros(40, bool))}, y) == \
        {"best": 1.0}


def test_ensemble_probabilities_are_the_weighted_mean():
    a = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    b = np.array([[0.5, 0.5], [0.6, 0.4]], dtype=np.float32)
    assert np.allclose(ensemble_probabilities([a, b]), [[0.7, 0.3], [0.4, 0.6]])
    assert np.allclose(ensemble_probabilities([a, b], [3, 1]), 0.75 * a + 0.25 * b)


def test_ensemble_model_saves_loads_and_predicts_the_weighted_mean_of_its_members(tmp_path):
    spec = parse_spec({"name": "e", "data": {"dataset": "digits"}, "params": {"batch_size": 64}})
    ds = prepare_data(spec)
    members = []
    for seed, filters in ((0, 8), (1, 16)):
        keras.utils.set_random_seed(seed)
        model = build_model({"filters": filters, "conv_layers": 1, "units": 16, "loss": "sparse_categorical_crossentropy"},
                            ds.x_train.shape[1:], ds.n_classes)
        model.fit(ds.x_train, ds.y_train, epochs=1, batch_size=64, verbose=0)
        members.append(model)
    expected = 0.7 * members[0].predict(ds.x_test, verbose=0) + 0.3 * members[1].predict(ds.x_test, verbose=0)
    ensemble_model(members, [0.7, 0.3]).save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras", safe_mode=True)
    assert np.allclose(loaded.predict(ds.x_test, verbose=0), expected, atol=1e-5)


def test_auto_keeps_the_ensemble_chosen_on_the_validation_images(results_dir):
    spec = parse_spec({"name": "auto", "data": {"dataset": "digits"}, "params": SPACE,
                       "search": {"strategy": "auto", "epochs": 3, "max_trials": 6, "seed": 0}})
    assert spec.ensemble_size == 5 and spec.refits
    result = run_search(spec, results_dir=results_dir, run_name="e", progress=False)
    ens, refit = result.final["ensemble"], result.final["refit"]
    full = sorted((t for t in result.trials if t.status == "ok" and t.fully_trained),
                  key=lambda t: -t.metrics["val_accuracy"])
    assert len(full) >= 2 and refit["kept"]
    # the candidates: the top fully trained trials' models, kept as the search ran
    members = {p.stem for p in (result.run_dir / ENSEMBLE_DIR).glob("*.keras")}
    assert members == {t.trial_id for t in full[:5]}
    # their weights are greedy selection's on the validation images the search scored them on
    ds = prepare_data(spec)
    _, va = split_indices(ds.y_train, cv=None, validation_split=spec.data.validation_split, seed=0)[0]
    val = {t.trial_id: keras.saving.load_model(result.run_dir / ENSEMBLE_DIR / f"{t.trial_id}.keras")
           .predict(ds.x_train[va], verbose=0) for t in full[:5]}
    chosen = select_weights(val, ds.y_train[va])
    twin = f"{result.best.trial_id}-refit"  # the refit joins with its configuration's weight
    assert ens["weights"][twin] == ens["weights"][result.best.trial_id]
    total = 1.0 + chosen[result.best.trial_id]
    assert {k: w for k, w in ens["weights"].items() if k != twin} == \
        pytest.approx({k: w / total for k, w in chosen.items()}, abs=1e-4)
    assert ens["kept"] and kept_model(result.final) == "ensemble"
    # best.keras is the ensemble: its test predictions are the weighted mean of its members'
    kept = keras.saving.load_model(result.run_dir / "best.keras", safe_mode=True)
    parts = [kept.get_layer(f"member_{i}").predict(ds.x_test, verbose=0) for i in range(len(ens["members"]))]
    prob = kept.predict(ds.x_test, verbose=0)
    assert np.allclose(prob, ensemble_probabilities(parts, list(ens["weights"].values())), atol=1e-5)
    assert ens["test_accuracy"] == pytest.approx(float(np.mean(prob.argmax(1) == ds.y_test)), abs=1e-3)
    saved = np.load(result.run_dir / "predictions.npz")
    assert str(saved["trial_id"]) == "ensemble" and np.allclose(saved["y_prob"], prob, atol=1e-5)


def test_final_ensemble_one_keeps_a_single_model(results_dir):
    spec = parse_spec({"name": "one", "data": {"dataset": "digits"}, "params": SPACE,
                       "search": {"strategy": "auto", "epochs": 2, "max_trials": 3, "seed": 1}, "final": {"ensemble": 1}})
    result = run_search(spec, results_dir=results_dir, run_name="one", progress=False)
    assert "ensemble" not in result.final and kept_model(result.final) in ("refit", "search")
    assert not (result.run_dir / ENSEMBLE_DIR).exists()
    assert str(np.load(result.run_dir / "predictions.npz")["trial_id"]) != "ensemble"


def test_a_damaged_member_leaves_the_kept_model_as_it_was(tmp_path):
    """The ensemble comes after the final model: when it fails (here a member's file is
    damaged), the note says why in one line and ``best.keras`` is untouched."""
    import types

    from automnist.artifacts import save_best_model
    from automnist.final import finish
    from automnist.records import TrialRecord

    spec = parse_spec({"name": "d", "data": {"dataset": "digits"}, "params": {"batch_size": 64},
                       "search": {"strategy": "random", "epochs": 1}, "final": {"refit": False, "ensemble": 2}})
    ds = prepare_data(spec)
    keras.utils.set_random_seed(0)
    model = build_model({"filters": 8, "conv_layers": 1, "units": 16, "loss": "sparse_categorical_crossentropy"},
                        ds.x_train.shape[1:], ds.n_classes)
    model.fit(ds.x_train, ds.y_train, epochs=1, batch_size=64, verbose=0)
    save_best_model(model, ds, tmp_path, "0000")
    (tmp_path / ENSEMBLE_DIR).mkdir()
    model.save(tmp_path / ENSEMBLE_DIR / "0000.keras")
    (tmp_path / ENSEMBLE_DIR / "0001.keras").write_bytes(b"not a keras file")
    trials = [TrialRecord(f"000{i}", i, {"filters": 8}, status="ok", epochs=1, max_epochs=1,
                          metrics={"val_accuracy": 0.9 - i / 10}) for i in range(2)]
    assert all(t.fully_trained for t in trials)
    before = (tmp_path / "best.keras").read_bytes()
    ctx = types.SimpleNamespace(spec=spec, best=trials[0], trials=trials, run_dir=tmp_path, dataset=ds,
                                data=ds, deadline=None, plan=None)
    note = finish(ctx)
    assert note["ensemble"]["kept"] is False and note["ensemble"]["error"].startswith("the ensemble failed (")
    assert "\n" not in note["ensemble"]["error"] and kept_model(note) == "search"
    assert (tmp_path / "best.keras").read_bytes() == before
    assert str(np.load(tmp_path / "predictions.npz")["trial_id"]) == "0000"
