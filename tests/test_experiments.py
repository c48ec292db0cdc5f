"""The seed reports' experiments as specs (search_spaces/*.yaml): valid, faithful, runnable."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml

from automnist.builders import build_model, check_feasible, conv_plan
from automnist.errors import InfeasibleConfig
from automnist.spec import DEFAULTS, LR_FROM_LR_FIND, load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "search_spaces").glob("*.yaml"))
SEED_SPECS = [p for p in SPECS if p.stem.startswith("seed")]


def _values(spec):
    values = spec.default_values()
    if values.get("learning_rate") == LR_FROM_LR_FIND:
        values["learning_rate"] = 1e-3
    return values


def _fits(spec, shape) -> bool:
    try:
        check_feasible(_values(spec), shape, spec.model)
    except InfeasibleConfig:
        return False
    return True


def test_every_spec_validates(capsys):
    from automnist.cli import main

    assert len(SEED_SPECS) == 13
    assert main(["validate", *map(str, SPECS)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(SPECS)


def test_each_seed_spec_names_its_report_section_and_published_number():
    for path in SEED_SPECS:
        header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
        assert header and header[0].startswith(f"# Seed 00{path.stem[6]} ("), path.name
        assert any(ln.startswith("# Published:") for ln in header), path.name


@pytest.mark.parametrize(
    "name, shape, count",
    [
        ("seed000_cnn", (28, 28, 1), 225_034),
        ("seed000_cnn_noisy", (28, 28, 1), 225_034),
        ("seed000_cnn_denoised", (28, 28, 1), 225_034),
        ("seed001_small_cnn", (28, 28, 1), 27_562),
        ("seed002_cifar10_model1", (32, 32, 3), 181_162),
        ("seed002_cifar10_model2", (32, 32, 3), 1_250_858),
        ("seed002_cifar10_model3", (32, 32, 3), 4_210_090),
        ("seed004_mlp_cv", (28, 28, 1), 473_631),
    ],
)
def test_published_parameter_counts_are_reproduced(name, shape, count):
    spec = load_spec(ROOT / "search_spaces" / f"{name}.yaml")
    assert build_model(_values(spec), shape, 10, model=spec.model).count_params() == count


def test_per_convolution_padding_and_strides():
    cfg = {**DEFAULTS, "conv_layers": 1, "convs_per_block": 2, "filters": 32, "kernel_size": 5,
           "strides": 2, "padding": ["same", "valid"]}
    plan = conv_plan(cfg, (32, 32, 3))
    assert plan[0]["padding"] == ["same", "valid"] and plan[0]["strides"] == [2, 2]
    assert plan[0]["out_hw"] == (3, 3)  # 32 -same/2-> 16 -valid 5x5/2-> 6 -pool-> 3
    model = build_model(cfg, (32, 32, 3), 10)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.padding, c.strides) for c in convs] == [("same", (2, 2)), ("valid", (2, 2))]
    # a shorter list repeats its last value; a list of strides works the same way
    mixed = conv_plan({**cfg, "convs_per_block": 3, "padding": ["same"], "strides": [1, 2]}, (32, 32, 3))
    assert mixed[0]["padding"] == ["same"] * 3 and mixed[0]["strides"] == [1, 2, 2]
    with pytest.raises(InfeasibleConfig, match="conv block 1, convolution 2: a 5x5 'valid' convolution needs"):
        conv_plan(cfg, (8, 8, 1))


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_runs_on_digits(path, tmp_path, capsys):
    """The issue's check: `automnist search SPEC --dataset digits --epochs 1 --subset 500` trains for real.

    The 28x28 and 32x32 architectures get the digits resized to their input size
    (`data.image_size`); without it they could not fit 8x8 images.  To keep the suite short,
    k-fold specs run 2 folds and a denoising autoencoder 2 epochs.
    """
    from automnist.cli import main
    from automnist.store import Store

    spec = load_spec(path)
    if spec.search.strategy.startswith("sklearn") and importlib.util.find_spec("automnist.strategies.sklearn") is None:
        pytest.skip("the scikit-learn strategies (automnist/strategies/sklearn.py) are not in this tree yet")
    results = tmp_path / "results"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "denoise" in raw:  # the autoencoder's 100 epochs are not what this checks: 2 will do
        raw["denoise"]["epochs"] = 2
        path = tmp_path / path.name
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cut = ["--cv", "2"] if spec.search.cv else []  # 2 folds instead of 10 train the same code
    code = main(["search", str(path), "--dataset", "digits", "--epochs", "1", "--subset", "500", "--max-trials", "2",
                 *cut, "--results", str(results), "--run-name", "r", "--quiet", "--no-report"])
    with Store.at(results) as store:
        run = store.get_run("r")
        trials = store.get_trials("r")
    assert run["status"] == "finished" and run["dataset"] == "digits"
    assert code == 0 and 1 <= len(trials) <= 2
    assert all(t.status == "ok" for t in trials), [t.error for t in trials]
    # scikit-learn searches score the test set with their refitted best model only
    tested = [t.metrics["test_accuracy"] for t in trials if "test_accuracy" in t.metrics]
    assert tested and all(0.0 < v <= 1.0 for v in tested)
    if spec.data.image_size is not None and spec.model == "cnn":  # the report's architecture, at its input size
        assert trials[0].n_params == build_model(_values(spec), (*spec.data.image_size, 1), 10).count_params()
    else:
        assert _fits(spec, (8, 8, 1))
    capsys.readouterr()


def test_image_size_resizes_at_load_and_is_validated(tmp_path):
    from automnist.errors import SpecError
    from automnist.runs import prepare_data
    from automnist.spec import parse_spec

    spec = load_spec(ROOT / "search_spaces" / "seed000_cnn.yaml").replace(dataset="digits", subset=100)
    ds = prepare_data(spec)
    assert spec.data.image_size == (28, 28) and ds.x_train.shape[1:] == (28, 28, 1)
    assert ds.source.endswith("resized from 8x8 to 28x28") and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # a bright pixel stays where it was, relative to the image
    plain = prepare_data(dataclasses.replace(spec, data=dataclasses.replace(spec.data, image_size=None)))
    i = int(plain.x_train[0, ..., 0].argmax())
    r, c = divmod(i, 8)
    assert ds.x_train[0, r * 28 // 8: (r + 1) * 28 // 8, c * 28 // 8: (c + 1) * 28 // 8].max() > 0.5
    assert parse_spec({"name": "s", "data": {"image_size": 32}}).data.image_size == (32, 32)
    assert "image_size" not in parse_spec({"name": "s"}).to_dict()["data"]  # old specs keep their hash
    with pytest.raises(SpecError, match=r"data.image_size: must be null, an integer or \[height, width\]"):
        parse_spec({"name": "s", "data": {"image_size": [28]}}, source="s.yaml")


def _fashion_mnist_available() -> bool:
    from automnist.data import available_datasets

    return any(i.name == "fashion_mnist" and i.available for i in available_datasets())


MNIST_ONLY_28 = [p for p in SEED_SPECS
                 if load_spec(p).data.dataset == "mnist" and not _fits(load_spec(p), (8, 8, 1))]


@pytest.mark.slow
@pytest.mark.skipif(not _fashion_mnist_available(), reason="needs fashion_mnist (28x28) on this machine")
@pytest.mark.parametrize("path", MNIST_ONLY_28, ids=[p.stem for p in MNIST_ONLY_28])
def test_mnist_architectures_train_on_28x28_images(path, tmp_path, capsys):
    """The MNIST specs that cannot fit 8x8 digits train on 28x28 images (Fashion-MNIST, found locally)."""
    from automnist.cli import main
    from automnist.store import Store

    results = tmp_path / "results"
    if load_spec(path).denoise is not None:  # its 100-epoch autoencoder already ran on digits: 2 epochs here
        text = path.read_text()
        assert "denoise: {filters: [32, 32], epochs: 100," in text
        path = tmp_path / path.name
        path.write_text(text.replace("denoise: {filters: [32, 32], epochs: 100,", "denoise: {filters: [32, 32], epochs: 2,"))
    code = main(["search", str(path), "--dataset", "fashion_mnist", "--epochs", "1", "--subset", "100",
                 "--max-trials", "1", "--results", str(results), "--run-name", "r", "--quiet", "--no-report"])
    with Store.at(results) as store:
        trials = store.get_trials("r")
    assert code == 0 and [t.status for t in trials] == ["ok"], [t.error for t in trials]
    capsys.readouterr()
