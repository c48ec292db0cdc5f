"""The command line through ``main([...])``: search, export, runs, validate, datasets, errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from automnist.cli import main

TINY = """\
name: tiny
model: cnn
data: {dataset: digits, subset: 300}
params:
  conv_layers: 1
  filters: 8
  padding: same
  units: {choice: [16, 32]}
  learning_rate: {float: [0.001, 0.01], log: true}
search: {strategy: random, max_trials: 2, epochs: 1, seed: 0}
"""


@pytest.fixture()
def tiny_spec(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


def test_search_then_export_csv_prints_one_row_per_trial(tiny_spec, tmp_path, capsys):
    res = str(tmp_path / "res")
    assert main(["search", str(tiny_spec), "--max-trials", "3", "--epochs", "1", "--run-name", "t1",
                 "--results", res, "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "run t1: 3 trials (3 ok, 0 failed, 0 infeasible)" in out and "rank" in out
    assert main(["export", "t1", "--format", "csv", "--results", res]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "ok" and 0.0 <= float(row["val_accuracy"]) <= 1.0
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0 and int(row["n_params"]) > 0
        assert row["param_units"] in ("16", "32")
    assert list(rows[0])[:2] == ["trial_id", "status"]
    assert main(["export", "t1", "--format", "json", "--results", res]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 3 and {d["trial_id"] for d in data} == {r["trial_id"] for r in rows}
    assert main(["runs", "--results", res]) == 0
    assert "t1" in capsys.readouterr().out


def test_search_overrides_strategy_dataset_and_seed(tiny_spec, tmp_path, capsys):
    res = str(tmp_path / "res")
    assert main(["search", str(tiny_spec), "--strategy", "grid", "--results", res]) == 2
    assert "params.learning_rate: grid search needs discrete values" in capsys.readouterr().err
    assert main(["search", str(tiny_spec), "--strategy", "bayesian", "--max-trials", "2", "--seed", "3",
                 "--dataset", "digits", "--subset", "200", "--run-name", "g", "--results", res, "--quiet",
                 "--no-report"]) == 0
    from automnist.store import Store

    with Store.at(res) as store:
        run = store.get_run("g")
    assert run["strategy"] == "bayesian" and run["seed"] == 3 and run["config"]["data"]["subset"] == 200


def test_invalid_spec_exits_nonzero_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nparams:\n  learning_rate: {type: float, low: 0, high: 0.1, log: true}\n")
    assert main(["search", str(bad), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"automnist: error: {bad}: params.learning_rate.low: log scale needs low > 0, got 0"]
    assert main(["validate", str(bad)]) == 2
    assert "log scale needs low > 0" in capsys.readouterr().err


def test_validate_lists_each_file(tiny_spec, capsys):
    assert main(["validate", str(tiny_spec)]) == 0
    assert capsys.readouterr().out.startswith(f"ok  {tiny_spec}: tiny (cnn, 2 searched")


def test_errors_for_unknown_run_missing_file_and_resume_without_name(tiny_spec, tmp_path, capsys):
    from automnist.store import Store

    res = str(tmp_path / "res")
    Store.at(res).close()
    assert main(["export", "ghost", "--results", res]) == 2
    assert "no run named 'ghost'" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: file not found" in capsys.readouterr().err
    assert main(["search", str(tiny_spec), "--resume", "--results", res]) == 2
    assert "--resume needs --run-name" in capsys.readouterr().err


def test_datasets_lists_digits_as_available(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    digits = next(line for line in lines if " digits " in f" {line} ")
    assert digits.startswith("yes")
    assert any("fashion_mnist" in line for line in lines)


def test_help_does_not_import_tensorflow():
    code = ("import sys, contextlib, io\nfrom automnist.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'seaborn', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "search" in capsys.readouterr().out


def test_cv_command_prints_mean_std_and_each_fold(tiny_spec, tmp_path, capsys):
    res = str(tmp_path / "res")
    assert main(["cv", str(tiny_spec), "--folds", "3", "--epochs", "1", "--run-name", "c", "--results", res]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run c: 3-fold CV of tiny: val_accuracy mean")
    folds = [float(line.rsplit(" ", 1)[1]) for line in out[1:4]]
    assert [line.split(":")[0].strip() for line in out[1:4]] == ["fold 0", "fold 1", "fold 2"]
    mean = float(out[0].split("mean ")[1].split(",")[0])
    assert abs(mean - sum(folds) / 3) < 1e-3
    from automnist.store import Store

    with Store.at(res) as store:
        assert store.get_run("c")["kind"] == "cv" and len(store.folds_frame("c")) == 3
    assert main(["cv", str(tiny_spec), "--folds", "1", "--results", res]) == 2
