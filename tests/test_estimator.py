"""KerasCNNClassifier, the scikeras tags shim and AutoCNNClassifier (automnist.sklearn_api)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    check_cv,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from automnist.errors import InfeasibleConfig
from automnist.sklearn_api import AutoCNNClassifier, KerasCNNClassifier, estimator_params
from automnist.spec import DEFAULTS, parse_spec
from automnist.store import Store

# A net this small trains in well under a second per fit on scikit-learn's check data.
TINY = dict(model="mlp", units=8, epochs=1)
# A small CNN for 8x8 digits.
SMALL_CNN = dict(conv_layers=1, filters=16, padding="same", units=64, batch_size=16, learning_rate=0.01)

EXPECTED_FAILED_CHECKS = {
    "check_mixin_order": (
        "scikeras' KerasClassifier(BaseWrapper, ClassifierMixin) puts BaseEstimator before ClassifierMixin and a "
        "subclass cannot reorder that MRO; the classifier tags this order loses are restored by __sklearn_tags__"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch SGD on shuffled batches is not equivalent when a sample gets weight 2 instead of being "
        "repeated (other batches, other number of steps); weights are honoured through Keras' weighted loss"
    ),
}


@pytest.fixture(scope="module")
def digits():
    """scikit-learn digits: (x_train, x_test, y_train, y_test), images 8x8 in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype("float32")
    return train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)


@pytest.fixture(scope="module")
def fitted_cnn(digits):
    xtr, _, ytr, _ = digits
    return KerasCNNClassifier(epochs=2, random_state=0, **SMALL_CNN).fit(xtr, ytr)


# --------------------------------------------------------------------------- scikit-learn's own checks


@parametrize_with_checks([KerasCNNClassifier(**TINY)], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*softmax over axis -1 of a tensor of shape.*")
        warnings.filterwarnings("ignore", message=".*num_classes > 1.*")
        check(estimator)


# --------------------------------------------------------------------------- the scikeras tags shim


def test_tags_make_the_estimators_classifiers():
    from scikeras.wrappers import KerasClassifier, KerasRegressor

    assert is_classifier(KerasCNNClassifier())
    # the shim is installed on scikeras' own classes when automnist.sklearn_api.classifier is imported
    assert is_classifier(KerasClassifier())
    assert is_regressor(KerasRegressor()) and not is_classifier(KerasRegressor())
    tags = get_tags(KerasClassifier())
    assert tags.target_tags.required and tags.classifier_tags.multi_label and tags.classifier_tags.poor_score
    assert tags.input_tags.two_d_array
    own = get_tags(KerasCNNClassifier())
    assert own.estimator_type == "classifier" and not own.classifier_tags.multi_label
    assert own.input_tags.three_d_array and not own.target_tags.multi_output


def test_integer_cv_is_stratified_for_the_estimators():
    from scikeras.wrappers import KerasClassifier

    y = np.repeat([0, 1, 2], 30)  # sorted labels: unstratified KFold folds would hold one class each
    for est in (KerasCNNClassifier(), KerasClassifier()):
        cv = check_cv(3, y, classifier=is_classifier(est))
        assert isinstance(cv, StratifiedKFold) and not isinstance(cv, KFold)
        counts = [np.bincount(y[test], minlength=3).tolist() for _, test in cv.split(np.zeros((90, 1)), y)]
        assert counts == [[10, 10, 10]] * 3


def test_cross_val_score_with_roc_auc_is_finite(digits):
    xtr, _, ytr, _ = digits
    keep = np.isin(ytr, [0, 1, 2])
    order = np.argsort(ytr[keep], kind="stable")  # sorted by class: KFold would break roc_auc
    x, y = xtr[keep][order], ytr[keep][order]
    scores = cross_val_score(KerasCNNClassifier(model="mlp", units=16, epochs=2, random_state=0), x, y, cv=3,
                             scoring="roc_auc_ovr")
    assert scores.shape == (3,) and np.isfinite(scores).all() and (scores > 0.5).all()


# --------------------------------------------------------------------------- parameters


def test_defaults_come_from_the_spec_and_clone_round_trips():
    est = KerasCNNClassifier()
    params = est.get_params()
    assert set(params) == set(DEFAULTS) | {"model", "random_state", "verbose", "image_shape"}
    for name, default in DEFAULTS.items():
        expected = tuple(default) if isinstance(default, list) else default
        auto = {"epochs": 10, "conv_layers": None, "padding": None}  # None: decided at fit from the input
        assert params[name] == auto.get(name, expected), name
    est.set_params(units=(64, 32), dense_layers=2, learning_rate=0.01)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert repr(twin) == "KerasCNNClassifier(dense_layers=2, learning_rate=0.01, units=(64, 32))"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"learning_rate": -1.0}, "KerasCNNClassifier: parameter learning_rate: must be"),
        ({"units": 0}, "parameter units: must be an integer from 1 to 65536 or a non-empty list of at most 64 of them, "
                       "got 0"),
        ({"model": "rnn"}, "parameter model: must be one of cnn, mlp, got 'rnn'"),
        ({"activation": "sigmoidal"}, "parameter activation: must be one of relu"),
        ({"epochs": None}, "parameter epochs: must be an integer >= 1, got None"),
        ({"augmentation": {"spin": 3}}, "parameter augmentation: unknown augmentation key 'spin'"),
        ({"image_shape": (8,)}, "parameter image_shape: must be None, (height, width) or (height, width, channels)"),
    ],
)
def test_fit_validates_with_the_spec_rules(params, message):
    est = KerasCNNClassifier(**params)  # the constructor stores anything untouched
    assert all(getattr(est, k) == v for k, v in params.items())
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        est.fit(np.zeros((20, 8, 8), dtype="float32"), np.arange(20) % 2)


def test_learning_rate_error_names_the_value():
    with pytest.raises(ValueError, match=r"got -1\.0$"):
        KerasCNNClassifier(learning_rate=-1.0).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


def test_infeasible_configuration_says_why():
    est = KerasCNNClassifier(conv_layers=3, kernel_size=5, padding="valid", epochs=1)
    with pytest.raises(InfeasibleConfig, match=r"conv block 2, convolution 1: a 5x5 'valid' convolution needs an input "
                                                r"of at least 5x5, got 2x2"):
        est.fit(np.zeros((10, 8, 8), dtype="float32"), np.arange(10) % 2)


def test_estimator_params_fold_per_layer_overrides():
    values = {**DEFAULTS, "dense_layers": 2, "units": 64, "units_2": 16, "conv_layers": 2, "filters_1": 8,
              "tuner/epochs": 3}
    params = estimator_params(values)
    assert params["units"] == [64, 16] and params["filters"] == [8, 64]
    assert set(params) == set(DEFAULTS)


# --------------------------------------------------------------------------- inputs


def test_image_shapes_flat_3d_and_4d_give_the_same_network(digits):
    xtr, xte, ytr, _ = digits
    x, y = xtr[:200], ytr[:200]
    base = dict(model="cnn", conv_layers=1, filters=4, padding="same", units=8, epochs=1, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flat = KerasCNNClassifier(**base).fit(x.reshape(200, 64), y)
    inferred = [str(w.message) for w in caught if "treating each row as a 8x8 single-channel image" in str(w.message)]
    assert len(inferred) == 1
    four = KerasCNNClassifier(**base).fit(x[..., None], y)
    three = KerasCNNClassifier(**base, image_shape=(8, 8)).fit(x, y)
    for est in (flat, three, four):
        assert est.input_shape_ == (8, 8, 1) and est.n_features_in_ == 64
    p = flat.predict_proba(xte[:20].reshape(20, 64))
    # the same seed and the same images: identical networks, whatever the input layout
    np.testing.assert_array_equal(p, four.predict_proba(xte[:20][..., None]))
    np.testing.assert_array_equal(p, three.predict_proba(xte[:20].reshape(20, 64)))
    np.testing.assert_array_equal(p, flat.predict_proba(xte[:20]))  # 3-D into a flat-fitted estimator
    with pytest.raises(ValueError, match="X has 63 features, but KerasCNNClassifier is expecting 64 features as input"):
        flat.predict(xte[:5].reshape(5, 64)[:, :63])
    with pytest.raises(ValueError, match=r"X has samples of shape \(4, 16, 1\), but KerasCNNClassifier was fitted on "
                                         r"samples of shape \(8, 8, 1\)"):
        four.predict(xte[:5].reshape(5, 4, 16, 1))


def test_flat_input_that_is_not_square_needs_image_shape_or_mlp():
    x = np.random.default_rng(0).random((30, 10)).astype("float32")
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match=r"X is flat with 10 features, which is not a square image; pass image_shape="):
        KerasCNNClassifier(epochs=1).fit(x, y)
    with pytest.raises(ValueError, match=r"parameter image_shape: \(2, 4, 1\) holds 8 values per image, but X has "
                                         r"samples of shape \(10,\) \(10 values\)"):
        KerasCNNClassifier(epochs=1, image_shape=(2, 4)).fit(x, y)
    mlp = KerasCNNClassifier(**TINY).fit(x, y)
    assert mlp.input_shape_ == (10,) and mlp.n_features_in_ == 10
    cnn = KerasCNNClassifier(epochs=1, conv_layers=1, filters=2, padding="same", pooling="none", image_shape=(2, 5))
    assert cnn.fit(x, y).input_shape_ == (2, 5, 1)


def test_string_labels_and_probabilities(digits):
    xtr, xte, ytr, _ = digits
    names = np.array(["zero", "one", "two"])
    keep = ytr < 3
    y = names[ytr[keep]]
    est = KerasCNNClassifier(model="mlp", units=16, epochs=2, random_state=0).fit(xtr[keep], y)
    assert est.classes_.tolist() == ["one", "two", "zero"] and est.n_classes_ == 3
    pred = est.predict(xte[:10])
    prob = est.predict_proba(xte[:10])
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    assert prob.shape == (10, 3) and np.allclose(prob.sum(axis=1), 1.0, atol=1e-5)
    assert pred.tolist() == est.classes_[prob.argmax(axis=1)].tolist()
    assert est.score(xtr[keep], y) > 0.8


def test_binary_targets_use_two_softmax_units():
    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    y = np.where(x[:, 0] > 0.5, "yes", "no")
    est = KerasCNNClassifier(**TINY, loss="sparse_categorical_crossentropy").fit(x, y)
    assert est.model_.output_shape == (None, 2) and est.predict_proba(x[:3]).shape == (3, 2)
    assert KerasCNNClassifier(**TINY, loss="kl_divergence").fit(x, y).predict(x[:3]).shape == (3,)


# --------------------------------------------------------------------------- fitting


def test_pickled_estimator_predicts_identically(fitted_cnn, digits):
    _, xte, _, yte = digits
    prob = fitted_cnn.predict_proba(xte)
    twin = pickle.loads(pickle.dumps(fitted_cnn))
    np.testing.assert_array_equal(twin.predict_proba(xte), prob)
    assert twin.classes_.tolist() == list(range(10)) and twin.history_ == fitted_cnn.history_
    assert fitted_cnn.score(xte, yte) > 0.85


def test_probabilities_do_not_depend_on_the_order_of_the_rows(digits):
    # float32 products round a row differently by its place in a batch; rows are fed in a
    # canonical order, so shuffled rows get bit-identical probabilities (sizes that are not
    # a multiple of any kernel block, where the rounding used to differ)
    xtr, xte, ytr, _ = digits
    est = KerasCNNClassifier(model="mlp", units=8, epochs=1, random_state=1).fit(xtr.reshape(len(xtr), 64), ytr)
    for n in (7, 20, 100, len(xte)):
        x = xte[:n].reshape(n, 64)
        prob = est.predict_proba(x)
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(n)
            np.testing.assert_array_equal(est.predict_proba(x[order]), prob[order])


def test_seeded_fits_are_identical_and_old_models_survive_new_fits(fitted_cnn, digits):
    xtr, xte, ytr, _ = digits
    before = fitted_cnn.predict_proba(xte[:50])
    again = KerasCNNClassifier(epochs=2, random_state=0, **SMALL_CNN).fit(xtr, ytr)  # clear_session runs here
    np.testing.assert_array_equal(again.predict_proba(xte[:50]), before)
    np.testing.assert_array_equal(fitted_cnn.predict_proba(xte[:50]), before)


def test_fits_do_not_leak_tensorflow_gradient_registrations(digits):
    from tensorflow.python.framework import ops

    xtr, _, ytr, _ = digits

    def custom_gradients() -> int:
        return sum(str(k).startswith("CustomGradient-") for k in ops._gradient_registry._registry)

    KerasCNNClassifier(**TINY).fit(xtr[:100], ytr[:100])
    n = custom_gradients()
    for _ in range(2):
        KerasCNNClassifier(**TINY).fit(xtr[:100], ytr[:100])
    assert custom_gradients() == n


def test_validation_split_records_validation_history(digits):
    xtr, _, ytr, _ = digits
    est = KerasCNNClassifier(model="mlp", units=16, epochs=3, validation_split=0.25, random_state=0).fit(xtr, ytr)
    assert sorted(est.history_) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert [len(v) for v in est.history_.values()] == [3, 3, 3, 3]
    assert est.current_epoch == 3


@pytest.mark.slow
def test_pipeline_with_noise_inside_grid_search_beats_90_percent(digits):
    xtr, xte, ytr, yte = digits

    pipe = make_pipeline(
        FunctionTransformer(_gaussian_noise),
        KerasCNNClassifier(epochs=2, image_shape=(8, 8), random_state=0, **{**SMALL_CNN, "learning_rate": 0.003}),
    )
    search = GridSearchCV(pipe, {"kerascnnclassifier__learning_rate": [0.003, 0.01]},
                          cv=StratifiedKFold(3, shuffle=True, random_state=0))
    search.fit(xtr.reshape(len(xtr), 64), ytr)
    assert search.cv_results_["mean_test_score"].min() > 0.9
    assert search.score(xte.reshape(len(xte), 64), yte) > 0.9


def _gaussian_noise(x: np.ndarray) -> np.ndarray:
    return x + np.random.default_rng(0).normal(0.0, 0.05, x.shape).astype("float32")


# --------------------------------------------------------------------------- AutoCNNClassifier

SPACE = {
    "name": "auto-test",
    "model": "cnn",
    "params": {
        "conv_layers": 1,
        "filters": 16,
        "padding": "same",
        "units": {"choice": [32, 64]},
        "learning_rate": {"float": [0.003, 0.01], "log": True},
        "batch_size": 16,
    },
    "search": {"strategy": "random", "epochs": 2, "seed": 0},
}


@pytest.mark.slow
def test_auto_classifier_searches_refits_and_scores(digits, tmp_path):
    import pandas as pd

    xtr, xte, ytr, yte = digits
    auto = AutoCNNClassifier(space=SPACE, max_trials=3, results_dir=tmp_path).fit(xtr, ytr)
    assert auto.score(xte, yte) > 0.9
    frame = pd.DataFrame(auto.cv_results_)
    assert len(frame) == 3 and (frame["status"] == "ok").all()
    assert auto.best_score_ == frame["mean_test_score"].max()
    best = frame[frame["rank_test_score"] == 1].iloc[0]
    assert best["params"] == auto.best_params_ and set(auto.best_params_) == {"units", "learning_rate"}
    assert 0.003 <= auto.best_params_["learning_rate"] <= 0.01 and best["param_units"] in (32, 64)
    assert auto.best_estimator_.units == auto.best_params_["units"] and auto.best_estimator_.epochs == 2
    assert auto.classes_.tolist() == list(range(10)) and auto.n_features_in_ == 64
    with Store.at(tmp_path) as store:
        run = store.get_run(auto.search_run_)
        trials = store.trials_frame(auto.search_run_)
    assert run["status"] == "finished" and run["dataset"] == "arrays" and run["strategy"] == "random"
    assert sorted(trials["val_accuracy"]) == sorted(frame["mean_test_score"])
    np.testing.assert_array_equal(auto.predict_proba(xte[:5]), auto.best_estimator_.predict_proba(xte[:5]))


@pytest.mark.slow
def test_nested_cross_validation_of_a_pipeline_with_an_auto_classifier(digits, tmp_path):
    xtr, _, ytr, _ = digits
    names = np.array(list("abcdefghij"))
    x, y = xtr[:600].reshape(600, 64), names[ytr[:600]]
    auto = AutoCNNClassifier(space=SPACE, strategy="sklearn-random", max_trials=2, epochs=1, cv=2,
                             results_dir=tmp_path, run_name="nested", image_shape=(8, 8))
    scores = cross_val_score(make_pipeline(StandardScaler(), auto), x, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all() and (scores > 0.3).all()
    with Store.at(tmp_path) as store:
        runs = store.runs_frame().set_index("run")
    # every fit of a clone gets its own run, even with the same run_name
    assert sorted(runs.index) == ["nested", "nested-2"]
    assert runs["n_trials"].tolist() == [2, 2] and runs["strategy"].tolist() == ["sklearn-random"] * 2


def test_auto_classifier_rejects_bad_spaces():
    with pytest.raises(ValueError, match="parameter space: must be None, a YAML path, a mapping or a SearchSpec"):
        AutoCNNClassifier(space=3).fit(np.zeros((10, 8, 8)), np.arange(10) % 2)
    with pytest.raises(ValueError, match=r"search.strategy: must be one of"):
        AutoCNNClassifier(space=SPACE, strategy="annealing").fit(np.zeros((10, 8, 8)), np.arange(10) % 2)


def test_cv_results_rank_failed_trials_last_and_negate_losses():
    from automnist.records import TrialRecord

    spec = parse_spec({**SPACE, "objective": "val_loss"})
    trials = [
        TrialRecord("0", 0, {**DEFAULTS, "units": 32, "learning_rate": 0.005}, metrics={"val_loss": 0.5}),
        TrialRecord("1", 1, {**DEFAULTS, "units": 64, "learning_rate": 0.004}, status="failed", error="boom"),
        TrialRecord("2", 2, {**DEFAULTS, "units": 64, "learning_rate": 0.008}, metrics={"val_loss": 0.25}),
    ]
    auto = AutoCNNClassifier(space=spec)
    auto.search_run_ = "r"
    auto._set_results(spec, trials, trials[2])
    res = auto.cv_results_
    assert res["mean_test_score"].tolist()[::2] == [-0.5, -0.25] and np.isnan(res["mean_test_score"][1])
    assert res["rank_test_score"].tolist() == [2, 3, 1]
    assert auto.best_score_ == -0.25 and auto.best_params_ == {"units": 64, "learning_rate": 0.008}
    assert res["param_units"].tolist() == [32, 64, 64] and res["status"].tolist() == ["ok", "failed", "ok"]
    assert res["error"].tolist() == ["", "boom", ""]
