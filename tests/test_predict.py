"""Preparing images for a model, exporting a run's model, predicting drawn digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from automnist.errors import AutomnistError, DataError
from automnist.predict import prepare_image, read_image


def test_shrink_and_invert_a_dark_drawing_on_white():
    arr = np.full((16, 16), 255, dtype=np.uint8)
    arr[:8, :8] = 0  # a black top-left quarter on white
    out = prepare_image(Image.fromarray(arr), (2, 2, 1))
    assert out.shape == (2, 2, 1) and out.dtype == np.float32
    assert out[..., 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # box-averaged, then inverted (white border)
    assert prepare_image(Image.fromarray(arr), (2, 2, 1), invert="no")[..., 0].tolist() == [[0.0, 1.0], [1.0, 1.0]]


def test_light_on_dark_is_not_inverted_and_aspect_is_kept_by_padding():
    arr = np.zeros((4, 8), dtype=np.uint8)  # 8 wide, 4 tall, black
    arr[1:3, 2:6] = 200
    out = prepare_image(Image.fromarray(arr), (8, 8, 1))[..., 0]
    # padded to 8x8 with the (black) border colour, the image centred vertically
    assert np.all(out[:2] == 0.0) and np.all(out[6:] == 0.0)
    assert out[2:6].tolist() == (arr / 255.0).astype(np.float32).tolist()


def test_transparent_background_counts_as_white_and_rgb_models_never_auto_invert():
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)  # fully transparent
    rgba[2:6, 3:5] = (0, 0, 0, 255)  # an opaque black stroke
    out = prepare_image(Image.fromarray(rgba, "RGBA"), (8, 8, 1))[..., 0]
    assert out[2:6, 3:5].min() == 1.0 and out[0].max() == 0.0
    photo = np.full((8, 8, 3), (250, 240, 230), dtype=np.uint8)  # a bright photo
    rgb = prepare_image(Image.fromarray(photo), (4, 4, 3))
    assert rgb.shape == (4, 4, 3) and rgb[0, 0].tolist() == pytest.approx([250 / 255, 240 / 255, 230 / 255])


def test_unreadable_files_raise_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such image file"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png: cannot read the image"):
        read_image(bad)
    with pytest.raises(AutomnistError, match="only 1 \\(grayscale\\) or 3 \\(RGB\\)"):
        prepare_image(Image.new("L", (4, 4)), (4, 4, 2))


def _drawn_digit(image: np.ndarray, path) -> None:
    """An 8x8 digit in [0, 1] as a 64x64 dark-on-white drawing."""
    big = np.kron(image[..., 0], np.ones((8, 8)))
    Image.fromarray(np.round(255 * (1.0 - big)).astype(np.uint8)).save(path)


@pytest.mark.slow
def test_export_and_predict_drawn_digits_from_the_command_line(tmp_path, capsys, digits_arrays):
    import keras

    from automnist.cli import main
    from automnist.search import run_search
    from automnist.spec import parse_spec

    results = tmp_path / "results"
    spec = parse_spec({"name": "pred", "data": {"dataset": "digits"},
                       "params": {"conv_layers": 1, "filters": 16, "padding": "same", "units": 64, "learning_rate": 0.005},
                       "search": {"max_trials": 1, "epochs": 5}})
    result = run_search(spec, results_dir=results, run_name="digits", progress=False)
    assert result.n_ok == 1 and result.best.metrics["test_accuracy"] > 0.8
    # real test digits the model gets right, drawn 64x64 dark-on-white
    model = keras.saving.load_model(result.run_dir / "best.keras")
    _, _, xte, yte = digits_arrays
    prob = model.predict(xte, verbose=0)
    picks = []
    for label in (1, 4, 7):
        ok = np.flatnonzero((yte == label) & (prob.argmax(1) == label))
        picks.append(int(ok[np.argmax(prob[ok, label])]))
    paths = []
    for i in picks:
        paths.append(tmp_path / f"digit_{yte[i]}.png")
        _drawn_digit(xte[i], paths[-1])
        # the 64x64 drawing comes back as the original 8x8 image (up to 8-bit rounding)
        back = prepare_image(read_image(paths[-1]), (8, 8, 1))
        assert np.abs(back - xte[i]).max() <= 0.5 / 255 + 1e-6
    assert main(["predict", "digits", *map(str, paths), "--top", "3", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and lines[0] == str(paths[0])
    for block, label in zip(range(0, 12, 4), (1, 4, 7)):
        assert lines[block + 1].split()[:2] == ["1.", str(label)]  # class names from predictions.npz
        assert [ln.split()[0] for ln in lines[block + 1:block + 4]] == ["1.", "2.", "3."]
    # export the model, then predict with the file: same answers
    out = tmp_path / "exported" / "digits.keras"
    assert main(["export-model", "digits", "--out", str(out), "--results", str(results)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert json.loads((tmp_path / "exported" / "digits.keras.classes.json").read_text()) == [str(i) for i in range(10)]
    assert main(["predict", str(out), str(paths[2]), "--top", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["1.", "7"]


def test_export_errors_are_one_line(tmp_path, capsys):
    from automnist.cli import main
    from automnist.records import TrialRecord
    from automnist.store import Store

    results = tmp_path / "results"
    with Store.at(results) as store:
        store.create_run("empty")
        store.add_trial("empty", TrialRecord(trial_id="0", number=0, params={}, status="infeasible", error="too small"))
    assert main(["export-model", "nope", "--out", str(tmp_path / "m.keras"), "--results", str(results)]) == 2  # bad input
    err = capsys.readouterr().err.strip()
    assert err.startswith("automnist: error: no run named 'nope'") and err.endswith("known runs: empty")
    assert main(["export-model", "empty", "--out", str(tmp_path / "m.keras"), "--results", str(results)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("automnist: error: run 'empty' has no saved model (") and "\n" not in err
    assert main(["predict", str(tmp_path / "none.keras"), "x.png"]) == 1
    assert "none.keras: no such model file" in capsys.readouterr().err
