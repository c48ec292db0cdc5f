"""Denoising: the spec section, the scikit-learn transformer, the search stage, the comparison."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from automnist.data import add_noise
from automnist.autoencoder import DenoisingAutoencoder
from automnist.aggregate import denoising_table
from automnist.experiments.denoise import CONDITIONS, compare_denoising
from automnist.errors import AutomnistError, SpecError
from automnist.spec import DenoiseSpec, load_spec, parse_spec

NOISY = {"dataset": "digits", "subset": 300, "noise": {"kind": "gaussian", "std": 0.4, "on": ["train", "test"]}}
TINY = {"conv_layers": 1, "filters": 8, "padding": "same", "units": 32, "learning_rate": 0.01}


def _spec(**extra):
    raw = {"name": "dn", "data": NOISY, "params": TINY, "search": {"epochs": 3, "max_trials": 1}, **extra}
    return parse_spec(raw)


def test_denoise_section_parses_round_trips_and_needs_noise(tmp_path):
    spec = _spec(denoise={"epochs": 4, "filters": [16, 8]})
    assert spec.denoise == DenoiseSpec(filters=(16, 8), epochs=4, batch_size=128, learning_rate=1e-3)
    assert parse_spec(spec.to_dict()) == spec
    assert _spec(denoise=True).denoise == DenoiseSpec()
    assert "denoise" not in _spec().to_dict()  # specs without it keep their hash
    f = tmp_path / "d.yaml"  # `on:` unquoted in YAML is the boolean true; it still means "on"
    f.write_text("name: d\ndata: {dataset: digits, noise: {kind: salt_pepper, amount: 0.2, on: [test]}}\ndenoise: true\n")
    assert load_spec(f).data.noise.on == ("test",)
    cases = [
        ({"data": {"dataset": "digits"}, "denoise": True},
         "denoise: needs data.noise: the autoencoder learns to map noisy training images to the clean ones"),
        ({"data": NOISY, "denoise": {"filters": []}},
         "denoise.filters: must be a list of 1 to 8 integers from 1 to 16384 (one per pooling level), got []"),
        ({"data": NOISY, "denoise": {"epoch": 3}}, "denoise.epoch: unknown key (did you mean 'epochs'?)"),
    ]
    for raw, message in cases:
        with pytest.raises(SpecError) as info:
            parse_spec({"name": "x", **raw}, source="f.yaml")
        assert str(info.value).startswith(f"f.yaml: {message}"), str(info.value)


@pytest.mark.slow
def test_autoencoder_learns_to_remove_noise(digits_arrays):
    xtr, _, xte, _ = digits_arrays
    ae = DenoisingAutoencoder(filters=(16,), epochs=40, batch_size=64, noise_std=0.3, random_state=0).fit(xtr)
    noisy = add_noise(xte, std=0.3, seed=5)
    out = ae.transform(noisy)
    assert out.shape == xte.shape and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    # on held-out digits the squared error to the clean image drops by more than 30% (0.053 -> 0.028)
    assert np.mean((out - xte) ** 2) < 0.7 * np.mean((noisy - xte) ** 2)
    assert len(ae.history_["loss"]) == 40 and ae.loss_ == ae.history_["loss"][-1]
    # the same images flat or without a channel axis come back in their own shape
    assert ae.transform(noisy[..., 0]).shape == xte.shape[:3]
    assert np.allclose(ae.transform(noisy.reshape(len(noisy), -1)), out.reshape(len(out), -1), atol=1e-6)
    assert clone(ae).get_params() == ae.get_params()


def test_autoencoder_errors_name_the_parameter(digits_arrays):
    xtr = digits_arrays[0][:32]
    with pytest.raises(ValueError, match=r"DenoisingAutoencoder: parameter noise: must be one of gaussian, salt_pepper, got 'speckle'"):
        DenoisingAutoencoder(noise="speckle").fit(xtr)
    with pytest.raises(ValueError, match=r"parameter epochs: must be an integer >= 1, got 0"):
        DenoisingAutoencoder(epochs=0).fit(xtr)
    with pytest.raises(ValueError, match=r"X_clean has shape \(16, 8, 8, 1\), X has \(32, 8, 8, 1\)"):
        DenoisingAutoencoder(epochs=1).fit(xtr, X_clean=xtr[:16])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DenoisingAutoencoder().transform(xtr)


@pytest.mark.slow
def test_pipeline_before_the_keras_classifier(digits_arrays):
    from sklearn.pipeline import Pipeline

    from automnist.sklearn_api import KerasCNNClassifier

    xtr, ytr, xte, yte = digits_arrays
    noisy_tr, noisy_te = add_noise(xtr, std=0.4, seed=0), add_noise(xte, std=0.4, seed=1)
    pipe = Pipeline([
        ("denoise", DenoisingAutoencoder(filters=(16,), epochs=15, batch_size=64, random_state=0)),
        ("cnn", KerasCNNClassifier(conv_layers=1, filters=8, padding="same", units=32, epochs=5,
                                   learning_rate=0.01, random_state=0)),
    ])
    pipe.fit(noisy_tr, ytr, denoise__X_clean=xtr)
    assert pipe.named_steps["denoise"].input_shape_ == (8, 8, 1)
    assert pipe.score(noisy_te, yte) > 0.5  # ten classes: chance is 0.1


@pytest.mark.slow
def test_search_denoises_once_before_training(results_dir):
    from automnist.runs import prepare_data
    from automnist.search import run_search

    spec = _spec(denoise={"epochs": 5, "filters": [8]})
    ds = prepare_data(spec)
    plain = prepare_data(_spec())
    assert ds.source.startswith(plain.source) and "denoised by a convolutional autoencoder (filters 8, 5 epochs" in ds.source
    assert ds.x_train.shape == plain.x_train.shape and not np.allclose(ds.x_train, plain.x_train)
    assert 0.0 <= ds.x_test.min() and ds.x_test.max() <= 1.0
    result = run_search(spec, results_dir=results_dir, run_name="dn", progress=False)
    assert result.n_ok == 1


@pytest.mark.slow
def test_compare_clean_noisy_denoised_is_stored(results_dir):
    from automnist.store import Store

    spec = _spec(denoise={"epochs": 10, "filters": [16]})
    frame = compare_denoising(spec, results_dir=results_dir, run_name="cmp")
    assert frame["condition"].tolist() == list(CONDITIONS) and (frame["status"] == "ok").all()
    assert frame["test_accuracy"].between(0, 1).all()
    with Store.at(results_dir) as store:
        run = store.get_run("cmp")
        stored = denoising_table(store.trials_frame("cmp"))
    assert run["strategy"] == "denoise-compare" and run["config"]["denoise_compare"]["conditions"] == list(CONDITIONS)
    assert stored[["condition", "test_accuracy", "val_accuracy"]].equals(frame[["condition", "test_accuracy", "val_accuracy"]])
    with pytest.raises(SpecError, match="data.noise: compare_denoising needs a noise setting"):
        compare_denoising(parse_spec({"name": "clean", "params": TINY}))
    with pytest.raises(AutomnistError, match="not a denoise-compare run"):
        denoising_table(_frame_without_conditions())


def _frame_without_conditions():
    import pandas as pd

    return pd.DataFrame({"trial_id": ["0"], "status": ["ok"]})


@pytest.mark.slow
def test_cli_compare_denoising_prints_stores_and_reports(tmp_path, capsys):
    import yaml

    from automnist.cli import main
    from automnist.store import Store

    path = tmp_path / "dn.yaml"
    path.write_text(yaml.safe_dump({"name": "dn", "data": NOISY, "params": TINY, "denoise": {"filters": [8], "epochs": 50},
                                    "search": {"epochs": 3}}))
    results = tmp_path / "results"
    args = ["compare-denoising", str(path), "--epochs", "2", "--denoise-epochs", "3", "--run-name", "cmp",
            "--results", str(results)]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "run cmp: dn on clean, noisy and denoised images"
    assert [line.split()[0] for line in out[1:4]] == list(CONDITIONS)
    assert out[4] == f"report: {results / 'cmp' / 'report.html'}"
    with Store.at(results) as store:
        run = store.get_run("cmp")
        table = denoising_table(store.trials_frame("cmp"))
    assert run["status"] == "finished" and run["config"]["denoise_compare"]["denoise"]["epochs"] == 3
    assert run["config"]["denoise_compare"]["epochs"] == 2 and run["config"]["denoise_compare"]["denoiser_loss"] > 0
    printed = [float(line.split()[2]) for line in out[1:4]]
    assert printed == pytest.approx(table["test_accuracy"].round(4).tolist())
    assert "Clean, noisy and denoised images" in (results / "cmp" / "report.html").read_text()
    # the same run name again is bad input (exit 2): it fails at once, before anything trains, and keeps the first run
    assert main(args) == 2
    assert "a run named 'cmp' already exists" in capsys.readouterr().err
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: p\nparams: {units: 8}\n")
    assert main(["compare-denoising", str(plain), "--denoise-epochs", "2"]) == 2
    assert "denoise.epochs: the spec has no denoise: section to override" in capsys.readouterr().err
