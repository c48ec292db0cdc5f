"""Every command, fed each kind of bad input (a spec, data, a run name), exits with code 2
and exactly one line on stderr, never a traceback (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automnist.cli import main

GOOD = "name: tiny\nmodel: cnn\ndata: {dataset: digits, subset: 100}\nparams: {conv_layers: 1, filters: 4}\n" \
       "search: {strategy: random, max_trials: 1, epochs: 1}\n"
BOMB = "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else '"lol"'] * 9) + "]\n" for i in range(9))
BAD_SPECS: dict[str, bytes] = {
    "alias-bomb": (BOMB + "name: *x8\n").encode(),
    "latin-1": "name: caf\xe9\n".encode("latin-1"),
    "utf-16": GOOD.encode("utf-16"),
    "deep": b"description: " + b"[" * 1000 + b"]" * 1000 + b"\n",
    "seed-negative": (GOOD + "data: {split_seed: -1}\n").replace("data: {dataset: digits, subset: 100}\n", "").encode(),
    "date-default": b"name: t\nparams: {units: {choice: [64, 128], default: 2020-01-01}}\n",
    "circular-when": b"params:\n  dropout: {float: [0, 0.5], step: 0.1, when: {units: 64}}\n"
                     b"  units: {choice: [64, 128], when: {dropout: 0.1}}\n",
    "huge-int": b"params: {units: " + b"9" * 5000 + b"}\n",
    "surrogate": b'name: "\\ud800"\n',
    "conv-layers-0": b"params: {conv_layers: 0}\n",
    "missing": None,
}
# every command that reads a spec, with the options that keep it from doing real work
SPEC_COMMANDS = [["search", "--no-report", "--quiet"], ["validate"], ["cv", "--folds", "2"],
                 ["lr-find", "--quiet"], ["compare-denoising", "--no-report"]]


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("automnist: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def bad_spec_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_specs")
    files = {}
    for name, content in BAD_SPECS.items():
        files[name] = root / f"{name}.yaml"
        if content is not None:
            files[name].write_bytes(content)
    return files


@pytest.mark.parametrize("command", SPEC_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec(command: list[str], case: str, bad_spec_files: dict[str, Path], tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_spec_files[case]
    line = _one_line_exit_2([command[0], str(path), *command[1:], "--results", str(tmp_path / "r")]
                            if command[0] != "validate" else ["validate", str(path)], capsys)
    assert str(path) in line
    assert not (tmp_path / "r" / "automnist.db").exists() or command[0] == "validate"


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_data")
    np.savez(root / "nan.npz", x=np.zeros((10, 4, 4)), y=np.array([0, 1, np.nan] * 3 + [0]))
    np.savez(root / "empty.npz", x=np.zeros((0, 4, 4)), y=np.zeros(0))
    np.savez(root / "one-class.npz", x=np.zeros((10, 4, 4)), y=np.zeros(10))
    (root / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "idx").mkdir()
    (root / "idx" / "train-images-idx3-ubyte").write_bytes(bytes.fromhex("00000803 00ffffff 00000100 00000100"))
    (root / "idx" / "train-labels-idx1-ubyte").write_bytes(bytes.fromhex("00000801 00ffffff"))
    return {"nan": f"npz:{root / 'nan.npz'}", "empty": f"npz:{root / 'empty.npz'}",
            "one-class": f"npz:{root / 'one-class.npz'}", "junk": f"npz:{root / 'junk.npz'}",
            "idx-huge-header": f"idx:{root / 'idx'}", "unknown": "no_such_set", "missing": f"npz:{root / 'none.npz'}"}


@pytest.fixture(scope="module")
def good_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "tiny.yaml"
    path.write_text(GOOD, encoding="utf-8")
    return path


DATA_COMMANDS = [["search", "--no-report", "--quiet"], ["cv", "--folds", "2"], ["lr-find", "--quiet"]]


@pytest.mark.parametrize("command", DATA_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("case", ["nan", "empty", "one-class", "junk", "idx-huge-header", "unknown", "missing"])
def test_bad_data(command: list[str], case: str, bad_data: dict[str, str], good_spec: Path, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_exit_2([command[0], str(good_spec), *command[1:], "--dataset", bad_data[case],
                      "--results", str(tmp_path / "r")], capsys)


@pytest.mark.parametrize("folds", ["1", "1000000000", "-5"])
def test_bad_fold_count(folds: str, good_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_exit_2(["cv", str(good_spec), f"--folds={folds}", "--results", str(tmp_path / "r")], capsys)
    assert "--folds: must be an integer from 2 to 100" in line and not (tmp_path / "r").exists()


BAD_NAMES = ["x/y", "..", ".", "x y", "a" * 300, "<script>", "-dash", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_run_name_for_every_command_that_creates_a_run(name: str, good_spec: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    res = str(tmp_path / "r")
    for argv in (["search", str(good_spec), "--no-report", "--quiet"], ["cv", str(good_spec), "--folds", "2"],
                 ["lr-find", str(good_spec), "--quiet"], ["compare-denoising", str(good_spec), "--no-report"],
                 ["demo", "--quiet"]):
        line = _one_line_exit_2([*argv, f"--run-name={name}", "--results", res], capsys)
        assert "run name: must be 1 to 100 characters" in line
    assert not Path(res).exists()  # refused before anything was created


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if not n.startswith("-")] + ["ghost"])
def test_unknown_or_hostile_run_name_for_every_command_that_reads_one(name: str, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from automnist.store import Store

    res = str(tmp_path / "r")
    Store.at(res).close()
    image = tmp_path / "img.png"
    image.write_bytes(b"not an image")
    for argv in (["export", name], ["export", name, "--format", "md"], ["report", name],
                 ["export-model", name, "--out", str(tmp_path / "m.keras")], ["predict", name, str(image)]):
        _one_line_exit_2([*argv, "--results", res], capsys)
    _one_line_exit_2(["report", "ghost", "ghost", "--results", res], capsys)


NOISY_GOOD = GOOD.replace("data: {dataset: digits, subset: 100}",
                          "data: {dataset: mnist, noise: {kind: gaussian, std: 0.3}}")


@pytest.mark.parametrize("command", [["search", "--no-report", "--quiet"], ["compare-denoising", "--no-report"],
                                     ["cv", "--folds", "2"], ["lr-find", "--quiet"]])
def test_data_that_cannot_be_loaded_leaves_no_run_behind(command, tmp_path, capsys):
    """Item 17: the data is loaded before the run is created, so a data set that is not
    there gives one line and no empty run in the store."""
    from automnist.store import Store

    spec = tmp_path / "s.yaml"
    spec.write_text(NOISY_GOOD, encoding="utf-8")
    results = tmp_path / "results"
    with Store.at(results) as store:  # a store that already holds a run
        store.create_run("earlier", strategy="random")
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    message = _one_line_exit_2([command[0], str(spec), *command[1:], "--data-dir", str(empty),
                                "--results", str(results)], capsys)
    assert "mnist" in message.lower()
    with Store.at(results) as store:
        assert store.run_names() == ["earlier"]
