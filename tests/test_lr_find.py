"""Learning-rate range test: smoothing, divergence, the suggestion rule, storage, specs, CLI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from automnist.aggregate import lr_find_curves
from automnist.errors import AutomnistError, SpecError
from automnist.experiments.lr_find import lr_find
from automnist.experiments.lr_find_curve import RULE, smooth_losses, stop_index, suggest_lr
from automnist.experiments.lr_find_spec import write_spec
from automnist.plots import plot_lr_find
from automnist.records import TrialRecord
from automnist.spec import LR_FROM_LR_FIND, FixedParam, load_spec, parse_spec

TINY = {"conv_layers": 1, "filters": 4, "padding": "same", "units": 16, "batch_size": 32}


def _spec(**params):
    return parse_spec({"name": "lr", "data": {"dataset": "digits", "subset": 200}, "params": {**TINY, **params},
                       "search": {"epochs": 1, "max_trials": 2}})


# --------------------------------------------------------------------------- pure numbers


def test_smoothing_is_a_bias_corrected_moving_average():
    assert smooth_losses([2.0, 2.0, 2.0]).tolist() == pytest.approx([2.0, 2.0, 2.0])
    # avg1 = 0.02 * 1, avg2 = 0.98 * 0.02 + 0.02 * 3 = 0.0796; corrected by 1 - 0.98**i
    assert smooth_losses([1.0, 3.0]).tolist() == pytest.approx([1.0, 0.0796 / 0.0396])
    assert smooth_losses([1.0, 3.0], beta=0.0).tolist() == [1.0, 3.0]
    assert np.isnan(smooth_losses([1.0, math.nan, 1.0])[1:]).all()
    with pytest.raises(ValueError, match=r"beta: must be in \[0, 1\), got 1.0"):
        smooth_losses([1.0], beta=1.0)


def test_divergence_is_four_times_the_best_smoothed_loss_or_nan():
    assert stop_index([2.0, 1.5, 1.0, 3.9, 4.1]) == 4
    assert stop_index([2.0, 1.0, 3.0], factor=2.0) == 2
    assert stop_index([2.0, 1.9, math.nan]) == 2
    assert stop_index([2.0, 1.0, 0.5]) is None


def _synthetic(n=801):
    """Loss over log10(lr) in [-6, 2]: falls as 2 sigmoid(3 (x + 2)) (steepest at lr 0.01), then explodes."""
    lrs = np.geomspace(1e-6, 1e2, n)
    x = np.log10(lrs)
    loss = 2.5 - 2.0 / (1.0 + np.exp(-3.0 * (x + 2.0))) + np.exp(3.0 * (x - 1.0))
    return lrs, loss


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs, loss = _synthetic()
    assert suggest_lr(lrs, loss) == pytest.approx(0.01, rel=0.03)  # one grid step is 10**0.01 = 2.3%
    # the rule ignores what comes after the minimum, however steep
    assert suggest_lr(lrs, loss) < lrs[int(np.argmin(loss))]
    # the noisy start is skipped: a cliff in the first 10 batches does not count
    noisy = loss.copy()
    noisy[3] -= 1.0
    assert suggest_lr(lrs, noisy) == pytest.approx(0.01, rel=0.03)
    # no descent, no suggestion
    assert math.isnan(suggest_lr(lrs[:50], np.linspace(1.0, 2.0, 50)))
    # NaN ends the usable curve
    cut = loss.copy()
    cut[500:] = math.nan
    assert suggest_lr(lrs, cut) == pytest.approx(0.01, rel=0.03)


def test_curves_frame_and_plot_from_history_rows():
    records = []
    for opt, scale in (("adam", 1.0), ("sgd", 2.0)):
        rec = TrialRecord(trial_id=opt, number=len(records), params={}, metrics={"suggested_lr": 0.01 * scale})
        for b, (lr, loss) in enumerate(zip([1e-3, 1e-2, 1e-1], [2.0, 1.0 * scale, 3.0]), start=1):
            rec.history += [{"fold": 0, "epoch": b, "metric": m, "value": v}
                            for m, v in (("lr", lr), ("loss", loss), ("smoothed_loss", loss))]
        records.append(rec)
    history = pd.DataFrame([{"run": "r", "trial_id": r.trial_id, **h} for r in records for h in r.history])
    trials = pd.DataFrame({"run": ["r", "r"], "trial_id": ["adam", "sgd"], "suggested_lr": [0.01, 0.02]})
    curves = lr_find_curves(history, trials)
    assert curves.columns.tolist() == ["run", "optimizer", "batch", "lr", "loss", "smoothed_loss", "suggested_lr"]
    assert curves["optimizer"].tolist() == ["adam"] * 3 + ["sgd"] * 3
    assert curves.loc[curves.optimizer == "sgd", "loss"].tolist() == [2.0, 2.0, 3.0]
    fig = plot_lr_find(curves)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_legend().get_texts()] == ["adam", "sgd"]


# --------------------------------------------------------------------------- specs


def test_learning_rate_accepts_from_lr_find_and_a_per_optimizer_mapping():
    spec = parse_spec({"name": "s", "params": {"optimizer": {"choice": ["adam", "sgd"]},
                                               "learning_rate": {"adam": 0.01, "sgd": 0.1}}})
    assert spec.param_map["learning_rate"] == FixedParam("learning_rate", {"adam": 0.01, "sgd": 0.1})
    assert parse_spec(spec.to_dict()) == spec
    assert _spec(learning_rate=LR_FROM_LR_FIND).param_map["learning_rate"].value == LR_FROM_LR_FIND
    cases = [
        ({"optimizer": {"choice": ["adam", "nadam"]}, "learning_rate": {"adam": 0.01}},
         "params.learning_rate: the per-optimizer mapping has no learning rate for optimizer 'nadam'"),
        ({"learning_rate": {"choice": [0.01, LR_FROM_LR_FIND]}},
         "params.learning_rate: 'from_lr_find' is only allowed as the fixed value"),
        ({"learning_rate": "later"}, "params.learning_rate: must be a number in (0.0, 1000.0], 'from_lr_find' or"),
        ({"learning_rate": {"adam": -1}}, "params.learning_rate: learning_rate.adam must be in (0.0, 1000.0], got {'adam': -1}"),
    ]
    for params, message in cases:
        with pytest.raises(SpecError) as info:
            parse_spec({"name": "s", "params": params}, source="f.yaml")
        assert str(info.value).startswith(f"f.yaml: {message}"), str(info.value)


def test_write_spec_fills_in_the_learning_rates(tmp_path):
    one = write_spec(_spec(optimizer="sgd"), {"adam": 0.0123456, "sgd": 0.25}, tmp_path / "one.yaml", run="r1")
    text = one.read_text()
    assert text.splitlines()[1] == "# Suggested learning rates: adam 0.0123, sgd 0.25."
    assert f"# Rule: {RULE}." in text
    assert load_spec(one).param_map["learning_rate"].value == 0.25
    both = write_spec(_spec(optimizer={"choice": ["adam", "sgd"]}), {"adam": 0.0123456, "sgd": 0.25},
                      tmp_path / "both.yaml")
    assert dict(load_spec(both).param_map["learning_rate"].value) == {"adam": 0.0123, "sgd": 0.25}
    with pytest.raises(AutomnistError, match="no suggested learning rate for the spec's optimizer 'sgd'"):
        write_spec(_spec(optimizer="sgd"), {"adam": 0.01, "sgd": math.nan}, tmp_path / "x.yaml")


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_range_test_on_digits_is_stored_per_optimizer(results_dir):
    from automnist.store import Store

    result = lr_find(_spec(), ["adam", "sgd"], min_lr=1e-5, max_lr=1e4, batches=80, results_dir=results_dir,
                     run_name="lf")
    with Store.at(results_dir) as store:
        run = store.get_run("lf")
        trials = store.trials_frame("lf")
        history = store.history_frame("lf")
    assert run["kind"] == "lr_find" and run["status"] == "finished" and run["config"]["lr_find"]["rule"] == RULE
    assert trials["trial_id"].tolist() == ["adam", "sgd"] and (trials["status"] == "ok").all()
    assert "param_learning_rate" not in trials and set(trials["param_optimizer"]) == {"adam", "sgd"}
    curves = lr_find_curves(history, trials)
    for opt, c in curves.groupby("optimizer"):
        lrs = c["lr"].to_numpy()
        assert lrs[0] == pytest.approx(1e-5) and lrs[-1] <= 1e4 * (1 + 1e-9)
        # exponential schedule: a constant ratio per batch, 79 steps from 1e-5 to 1e4
        assert np.diff(np.log(lrs)) == pytest.approx(np.full(len(lrs) - 1, np.log(1e9) / 79), rel=1e-4)
        # the stored smoothed loss is smooth_losses of the stored per-batch losses
        assert c["smoothed_loss"].to_numpy() == pytest.approx(smooth_losses(c["loss"].to_numpy()), rel=1e-6)
        m = trials.set_index("trial_id").loc[opt]
        assert m["batches"] == len(c) and m["batch_size"] == 32
        lr = m["suggested_lr"]
        assert math.isnan(lr) or 1e-5 <= lr <= m["min_loss_lr"]
        assert result.suggestions[opt] == lr or (math.isnan(lr) and math.isnan(result.suggestions[opt]))
    # adam on the way to 1e4 blows up: the test stops at 4x the best smoothed loss
    adam = curves[curves.optimizer == "adam"]["smoothed_loss"].to_numpy()
    assert trials.set_index("trial_id").loc["adam", "diverged"] == 1.0
    assert adam[-1] > 4 * adam[:-1].min() and len(adam) < 80
    assert len(result.lines()) == 2 and result.lines()[0].startswith("adam      ")


@pytest.mark.slow
def test_search_resolves_from_lr_find_reusing_a_stored_range_test(results_dir):
    from automnist.search import run_search
    from automnist.store import Store

    spec = _spec(optimizer={"choice": ["adam", "sgd"]}, learning_rate=LR_FROM_LR_FIND).replace(strategy="grid")
    with Store.at(results_dir) as store:  # an earlier `automnist lr-find` of this spec
        store.create_run("earlier", kind="lr_find", spec_name="lr", dataset="digits")
        for i, (opt, lr) in enumerate((("adam", 0.004), ("sgd", 0.3))):
            store.add_trial("earlier", TrialRecord(trial_id=opt, number=i, params={}, metrics={"suggested_lr": lr}))
        store.finish_run("earlier")
    result = run_search(spec, results_dir=results_dir, run_name="s", progress=False)
    with Store.at(results_dir) as store:
        config = store.get_run("s")["config"]
        names = store.run_names()
    assert names == ["earlier", "s"]  # nothing new was tested
    assert config["lr_find"]["runs"] == {"adam": "earlier", "sgd": "earlier"} and config["lr_find"]["tested_now"] == []
    assert config["params"]["learning_rate"] == LR_FROM_LR_FIND  # the run keeps the spec as written
    assert {t.params["optimizer"]: t.params["learning_rate"] for t in result.trials} == {"adam": 0.004, "sgd": 0.3}
    # a single optimizer without a stored test: the range test runs first, as its own run
    single = _spec(learning_rate=LR_FROM_LR_FIND).replace(name="other", max_trials=1)
    out = run_search(single, results_dir=results_dir, run_name="t", progress=False)
    with Store.at(results_dir) as store:
        lf = store.get_trials("t-lr_find")
        note = store.get_run("t")["config"]["lr_find"]
    assert [r.trial_id for r in lf] == ["adam"] and note["tested_now"] == ["adam"]
    assert out.trials[0].params["learning_rate"] == pytest.approx(float(f"{lf[0].metrics['suggested_lr']:.3g}"))


@pytest.mark.slow
def test_cli_lr_find_prints_one_line_per_optimizer_and_writes_the_spec(tmp_path, capsys):
    from automnist.cli import main

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("name: cli_lr\nparams: {conv_layers: 1, filters: 4, padding: same, units: 16, optimizer: sgd}\n")
    out = tmp_path / "tuned.yaml"
    code = main(["lr-find", str(spec_file), "--optimizers", "adam,sgd", "--batches", "40", "--dataset", "digits",
                 "--subset", "200", "--results", str(tmp_path / "res"), "--run-name", "cli", "--write-spec", str(out),
                 "--quiet"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("adam      ") and lines[1].startswith("sgd       ")
    assert lines[2] == f"rule: {RULE}" and lines[3].startswith("run: cli in ")
    assert lines[4] == f"wrote {out}"
    written = load_spec(out)
    assert written.data.dataset == "digits" and written.data.subset is None  # the spec as written, not the overrides
    assert isinstance(written.param_map["learning_rate"].value, float)
    assert main(["lr-find", str(spec_file), "--optimizers", "adam,lbfgs", "--results", str(tmp_path / "res")]) == 2
    assert capsys.readouterr().err.strip() == ("automnist: error: optimizers: unknown optimizer 'lbfgs'; known: "
                                               "adam, sgd, rmsprop, adagrad, adadelta, nadam, adamax")
