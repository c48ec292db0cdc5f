"""Newcomer polish (issue 13): estimator defaults that fit the input, quiet output, the
live report, the runs index and the notebook API."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest
from polish_runs import PolishRuns  # the polish_runs fixture: tests/conftest.py

from automnist.sklearn_api.inputs import fit_architecture
from automnist.spec import DEFAULTS

TF_NOISE = re.compile(r"cpu_feature_guard|oneDNN|remapper|absl::InitializeLog|^[IWE]\d{4} ", re.MULTILINE)


# --------------------------------------------------------------------------- 1. estimator defaults


@pytest.mark.parametrize("shape, blocks, padding", [
    ((28, 28, 1), 2, "valid"),  # the seed reports' network, unchanged
    ((32, 32, 3), 2, "valid"),
    ((8, 8, 1), 2, "same"),     # 8 -> 4 -> 2
    ((4, 4, 1), 1, "same"),     # 4 -> 2
])
def test_architecture_fits_the_input(shape, blocks, padding):
    auto = {**DEFAULTS, "conv_layers": None, "padding": None}
    config = fit_architecture(auto, shape, "cnn")
    assert (config["conv_layers"], config["padding"]) == (blocks, padding)
    assert {k: v for k, v in config.items() if k not in ("conv_layers", "padding")} == {
        k: v for k, v in DEFAULTS.items() if k not in ("conv_layers", "padding")}


def test_architecture_keeps_what_the_user_set():
    only_padding_auto = fit_architecture({**DEFAULTS, "conv_layers": 3, "padding": None}, (8, 8, 1), "cnn")
    assert only_padding_auto["conv_layers"] == 3 and only_padding_auto["padding"] == "same"  # 8-4-2-1: still builds
    valid = fit_architecture({**DEFAULTS, "conv_layers": None, "padding": "valid"}, (8, 8, 1), "cnn")
    assert (valid["conv_layers"], valid["padding"]) == (1, "valid")  # 8 -> 6 -> 3
    assert fit_architecture({**DEFAULTS, "conv_layers": 2, "padding": "valid"}, (8, 8, 1), "cnn")["padding"] == "valid"


@pytest.mark.slow
def test_both_estimators_with_no_arguments_learn_load_digits_as_returned():
    """scikit-learn's digits as load_digits returns them: flat rows of 64 values in 0..16."""
    import automnist
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    assert X.shape[1] == 64 and X.max() == 16
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "treating each row as an 8x8 image"
        cnn = automnist.KerasCNNClassifier().fit(Xtr, ytr)
        auto = automnist.AutoCNNClassifier().fit(Xtr, ytr)
    assert cnn.input_shape_ == (8, 8, 1)
    assert (cnn.model_config_["conv_layers"], cnn.model_config_["padding"]) == (2, "same")
    assert cnn.get_params()["padding"] is None  # the constructor argument stays untouched
    assert cnn.score(Xte, yte) > 0.9
    assert len(auto.cv_results_["params"]) == 3
    assert auto.score(Xte, yte) > 0.9


# --------------------------------------------------------------------------- 2. quiet by default


def test_the_command_prints_no_tensorflow_lines(polish_runs: PolishRuns):
    assert polish_runs.returncode == 0, polish_runs.stderr
    assert TF_NOISE.search(polish_runs.stderr) is None, polish_runs.stderr
    assert polish_runs.stderr == "", polish_runs.stderr  # no traceback for the infeasible trial either
    assert "run first: 2 trials (1 ok, 0 failed, 1 infeasible)" in polish_runs.stdout


def test_tensorflow_start_up_lines_are_dropped_from_the_c_level_stderr_and_errors_kept(capfd):
    """TensorFlow 2.21 logs its oneDNN line through absl before TF_CPP_MIN_LOG_LEVEL applies
    (on CPUs where oneDNN is on by default): these are lines it printed on this machine."""
    from automnist.logs import _TF_START_UP, _filtered_stderr

    printed = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1796264890.317939   14262 port.cc:153] oneDNN custom operations are on. You may see "
        "slightly different numerical results due to floating-point round-off errors from different "
        "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
        "I0000 00:00:1796264890.345774   14262 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
        "to use available CPU instructions in performance-critical operations.\n",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow "
        "with the appropriate compiler flags.\n",
        "E0000 00:00:1796264890.4   14262 cuda_dnn.cc:8] an error that must show\n",
        "ImportError: libfoo.so: cannot open shared object file\n",
    ]
    with _filtered_stderr(_TF_START_UP):
        for line in printed:
            os.write(2, line.encode())
    err = capfd.readouterr().err
    assert err == printed[4] + printed[5]
    os.write(2, b"after\n")  # fd 2 is back where it was
    assert capfd.readouterr().err == "after\n"


def test_automnist_warnings_print_once_in_its_own_words(capsys):
    from automnist import logs

    for _ in range(3):
        assert logs.show_warning(UserWarning("budget cut:\n  2 trials left"), logs.__file__) is True
    assert logs.show_warning(UserWarning("a library's"), "/usr/lib/python3/keras/x.py") is False
    assert capsys.readouterr().err == "automnist: warning: budget cut: 2 trials left\n"


def test_verbose_is_accepted_before_and_after_the_command():
    from automnist.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--verbose", "runs"]).verbose is True
    assert parser.parse_args(["runs", "--verbose"]).verbose is True
    assert parser.parse_args(["runs"]).verbose is False


# --------------------------------------------------------------------------- 4. live report


def test_live_report_is_marked_in_progress_and_the_final_one_replaces_it(polish_runs: PolishRuns):
    pages = polish_runs.live_pages
    assert len(pages) == 2
    assert "In progress:" in pages[0] and 'http-equiv="refresh"' in pages[0]  # written as trial 1 ended
    assert "search / running" in pages[0]
    assert pages[1] == pages[0]  # trial 2 ended within the hour the live report then waits
    final = (polish_runs.results / "second" / "report.html").read_text(encoding="utf-8")
    assert "In progress:" not in final and 'http-equiv="refresh"' not in final
    assert "search / finished" in final


def test_live_report_waits_between_rewrites(tmp_path):
    from automnist.report.live import LiveReport

    live = LiveReport(tmp_path, every_s=3600)
    written = []
    live._write = lambda store, run, refresh_s: written.append(refresh_s)  # count the rewrites only
    ctx = type("Ctx", (), {"store": None, "run": "r"})()
    for _ in range(3):
        live.trial_ended(ctx, None)
    assert written == []  # a search shorter than --report-every writes no extra report
    live.last -= 3600
    for _ in range(3):
        live.trial_ended(ctx, None)
    assert written == [3600.0]
    with pytest.raises(ValueError, match="--report-every"):
        LiveReport(tmp_path, every_s=-1)


# --------------------------------------------------------------------------- 3. index, 5. notebook


def test_index_lists_each_run_with_its_numbers(polish_runs: PolishRuns):
    from automnist.report.index import index_frame
    from automnist.store import Store

    assert polish_runs.index_after_first.count('href="first/report.html"') == 1  # written as `first` ended
    with Store.at(polish_runs.results) as store:
        frame = index_frame(store, polish_runs.results)
        trials = store.trials_frame(["first", "second"])
    assert list(frame["run"]) == ["second", "first"]  # newest first
    for row in frame.itertuples():
        mine = trials[(trials["run"] == row.run) & (trials["status"] == "ok")]
        assert (row.kind, row.strategy, row.dataset, row.status) == ("search", "grid", "digits", "finished")
        assert (row.n_ok, row.n_failed, row.n_infeasible) == (1, 0, 1)
        assert row.best_value == pytest.approx(float(mine["val_accuracy"].max()))
        assert row.test_accuracy == pytest.approx(float(mine["test_accuracy"].iloc[0]))
        assert row.report == f"{row.run}/report.html" and row.duration_s > 0


def test_results_for_notebooks(polish_runs: PolishRuns):
    import automnist
    from automnist.errors import StoreError

    results = automnist.Results(polish_runs.results)
    runs = results.runs()
    assert list(runs["run"]) == ["second", "first"] and str(runs["started_at"].dt.tz) == "UTC"
    trials = results.trials("first")
    assert list(trials["status"]) == ["ok", "infeasible"] and "param_kernel_size" in trials
    assert list(trials["param_kernel_size"]) == [3, 9]
    board = results.leaderboard("first")
    assert board["trial_id"].iloc[0] == trials.loc[trials["status"] == "ok", "trial_id"].iloc[0]
    assert set(results.history("first")["metric"]) >= {"loss", "val_accuracy"}
    report = results.report("first", fresh=False)  # the report written as the run ended
    shown = report._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in shown
    assert "&lt;!DOCTYPE html&gt;" in shown and report.path.name == "report.html"
    with pytest.raises(StoreError):
        results.trials("no-such-run")
    with pytest.raises(StoreError):
        automnist.Results(polish_runs.results / "nowhere")
    assert np.isfinite(runs["best_value"]).all()
