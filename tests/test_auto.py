"""The budget-aware strategy and multi-fidelity that keeps its training, on real digits:
a budgeted search ends with fully trained models, promoted trials continue their
models, early stopping is recorded, the final refit and the ensemble, resume after
SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import time

import keras
import numpy as np
import pytest

from automnist.final import ENSEMBLE_DIR, refit_epochs
from automnist.records import TrialRecord
from automnist.runner import run_trial
from automnist.runs import prepare_data
from automnist.search import run_search
from automnist.spec import DEFAULTS, EarlyStoppingSpec, parse_spec
from automnist.store import Store
from automnist.strategies.auto import rung_schedule
from test_search import KILL_SPEC, _search_until

SPACE = {
    "conv_layers": {"choice": [1, 2]},
    "filters": {"choice": [8, 16]},
    "padding": "same",
    "units": {"choice": [16, 32, 64]},
    "dropout": {"float": [0.0, 0.4]},
    "learning_rate": {"float": [3e-4, 1e-2], "log": True},
    "batch_size": 32,
}
BUDGET = 60


def _loss_curve(record: TrialRecord) -> dict[int, float]:
    return {h["epoch"]: h["value"] for h in record.history if h["metric"] == "loss" and h["fold"] == 0}


def test_rung_schedule():
    assert rung_schedule(10, 3) == (1, 3, 9, 10)
    assert rung_schedule(9, 3) == (1, 3, 9)
    assert rung_schedule(2, 3) == (1, 2)
    assert rung_schedule(1, 3) == (1,)
    assert rung_schedule(100, 3) == (3, 9, 27, 81, 100)


def test_a_time_budget_and_no_strategy_means_auto():
    spec = parse_spec({"name": "b", "search": {"time_budget": 30}})
    assert spec.search.strategy == "auto" and spec.refits and spec.search.max_trials == 10_000
    assert parse_spec({"name": "b", "search": {"time_budget": 30, "max_trials": 7}}).search.max_trials == 7
    assert not parse_spec({"name": "b", "search": {"time_budget": 30, "strategy": "random"}}).refits


@pytest.mark.serial
@pytest.mark.slow
def test_auto_within_its_budget_keeps_a_fully_trained_refit_and_an_ensemble(results_dir):
    spec = parse_spec({"name": "auto", "data": {"dataset": "digits"}, "params": SPACE,
                       "search": {"epochs": 9, "time_budget": BUDGET, "seed": 0}, "final": {"ensemble": 2}})
    t0 = time.time()
    result = run_search(spec, results_dir=results_dir, run_name="a", progress=False)
    elapsed = time.time() - t0
    # the budget bounds the search (a generous margin: this checks that it is obeyed at all)
    assert elapsed < BUDGET + 15
    # proposals predicted too costly for the budget left are recorded untrained (automnist.cost)
    skipped = [t for t in result.trials if t.status != "ok"]
    assert all(t.status == "infeasible" and t.stop_reason == "budget" and t.epochs == 0
               and t.error.startswith("too costly for the budget left") for t in skipped)
    trials = [t for t in result.trials if t.status == "ok"]
    assert len(trials) >= 3
    assert all(t.max_epochs == 9 and t.epochs in (1, 3, 9) or t.stop_reason == "budget" for t in trials)
    pruned = [t for t in trials if t.stop_reason == "pruned"]
    full = [t for t in trials if t.fully_trained]
    assert pruned and full
    # each trial stored its rungs: the epochs it reached, the images it saw, its score there
    for t in trials:
        assert [r["epochs"] for r in t.rungs] == [e for e in (1, 3, 9) if e <= t.epochs]
        assert all(r["images"] == t.images > 0 and 0 <= r["val_accuracy"] <= 1 for r in t.rungs)
    # a promoted trial's later epochs continue its model: no restart between rungs
    promoted = full[0]
    curve = _loss_curve(promoted)
    assert sorted(curve) == list(range(1, 10)) and curve[9] < curve[1]
    # the kept model is the best fully trained trial's configuration, refit on train + validation
    best = result.best
    assert best.fully_trained
    assert best.metrics["val_accuracy"] == max(t.metrics["val_accuracy"] for t in full)
    refit = result.final["refit"]
    assert refit["trial_id"] == best.trial_id and refit["planned_epochs"] == refit_epochs(best, "val_accuracy")
    # the refit runs when what is left of the budget allows as many epochs as the best trial trained
    # (this machine's speed varies, so either can happen); it is kept only then
    assert refit["status"] in ("ok", "skipped")
    if refit["status"] == "ok":
        assert refit["kept"] == (refit["epochs"] >= min(refit["planned_epochs"], best.epochs))
        assert refit["images"] == len(prepare_data(spec).y_train) > best.images
        assert 0.8 < refit["test_accuracy"] <= 1
    else:
        assert not refit["kept"] and "the search's best model is kept" in refit["error"]
    with Store.at(results_dir) as store:
        assert store.get_run("a")["config"]["final"] == result.final
        assert store.get_trials("a") == result.trials  # the proposals skipped as too costly too
    # the ensemble: chosen among the top 2 fully trained trials' models (and the refit, as the
    # best's twin); kept as best.keras when it has more than one member
    members = sorted((result.run_dir / ENSEMBLE_DIR).glob("*.keras"))
    ranked = sorted(full, key=lambda t: -t.metrics["val_accuracy"])
    assert [p.stem for p in members] == sorted(t.trial_id for t in ranked[:2])
    ens = result.final["ensemble"]
    assert best.trial_id in ens["members"] and set(ens["members"]) <= {p.stem for p in members} | {f"{best.trial_id}-refit"}
    assert (f"{best.trial_id}-refit" in ens["members"]) == bool(refit["kept"])
    assert sum(ens["weights"].values()) == pytest.approx(1.0, abs=1e-3) and ens["kept"] == (len(ens["members"]) > 1)
    # either way the kept model is fully trained: the ensemble, the refit, or the best fully trained trial's
    kept_trial = str(np.load(result.run_dir / "predictions.npz")["trial_id"])
    assert kept_trial == ("ensemble" if ens["kept"] else f"{best.trial_id}-refit" if refit["kept"] else best.trial_id)
    assert (result.run_dir / "best.keras").is_file()
    if ens["kept"]:
        ds = prepare_data(spec)
        prob = keras.saving.load_model(result.run_dir / "best.keras").predict(ds.x_test, verbose=0)
        assert ens["test_accuracy"] == pytest.approx(float(np.mean(prob.argmax(1) == ds.y_test)), abs=1e-3)
    # the report: the leaderboard says what each score was measured at, the final models apart
    from automnist.report import write_report

    with Store.at(results_dir) as store:
        html = write_report(store, ["a"], results_dir=results_dir).read_text(encoding="utf-8")
    assert "Final model" in html and "refit on training + validation" in html and "chosen on validation log loss" in html
    assert "max_epochs" in html and "fully_trained" in html and "pruned" in html


@pytest.mark.slow
def test_hyperband_promotion_continues_the_first_rung_weights(results_dir):
    spec = parse_spec({"name": "hb", "data": {"dataset": "digits", "subset": 400},
                       "params": {**SPACE, "learning_rate": 0.003},
                       "search": {"strategy": "hyperband", "epochs": 6, "factor": 3, "max_trials": 30, "seed": 1}})
    result = run_search(spec, results_dir=results_dir, run_name="hb", progress=False)
    continued = [t for t in result.trials if min(_loss_curve(t), default=1) > 1]
    assert continued, "Hyperband promoted no configuration"
    fresh_first = np.mean([_loss_curve(t)[1] for t in result.trials if 1 in _loss_curve(t)])
    for t in continued:
        start = min(_loss_curve(t))
        # the promoted trial starts where a lower-rung trial of the same configuration ended
        parents = [p for p in result.trials if p.params == t.params and p.epochs == start - 1]
        assert parents
        ended = _loss_curve(parents[0])[start - 1]
        assert abs(_loss_curve(t)[start] - ended) < abs(_loss_curve(t)[start] - fresh_first)
        assert _loss_curve(t)[start] < 0.8 * fresh_first
        assert t.rungs and t.rungs[0]["epochs"] == t.epochs
    assert not (result.run_dir / "checkpoints").exists()  # removed once the search ended


def test_early_stopping_stores_the_epoch_it_stopped_at(small_data, results_dir):
    config = {**DEFAULTS, "conv_layers": 1, "filters": 4, "padding": "same", "units": 16, "batch_size": 32,
              "optimizer": "sgd", "learning_rate": 0.5}
    rec = run_trial(config, small_data, trial_id="es", epochs=30, seed=0,
                    early_stopping=EarlyStoppingSpec(patience=2, monitor="val_loss"))
    assert rec.status == "ok" and rec.stop_reason == "early_stopping" and rec.fully_trained
    assert rec.epochs < 30 and rec.max_epochs == 30
    val_loss = {h["epoch"]: h["value"] for h in rec.history if h["metric"] == "val_loss"}
    best_epoch = min(val_loss, key=val_loss.get)
    assert rec.metrics["best_epoch"] == best_epoch and rec.epochs == best_epoch + 2
    assert rec.metrics["val_loss"] == pytest.approx(val_loss[best_epoch])  # the restored epoch's weights
    with Store.at(results_dir) as store:
        store.create_run("es")
        store.add_trial("es", rec)
        (back,) = store.get_trials("es")
    assert (back.epochs, back.stop_reason, back.metrics["best_epoch"]) == (rec.epochs, "early_stopping", best_epoch)
    assert refit_epochs(back, "val_accuracy") == best_epoch


@pytest.mark.slow
def test_sigkill_then_resume_an_auto_search(tmp_path):
    spec_text = KILL_SPEC.replace("strategy: random", "strategy: auto")
    proc, cmd, env, results = _search_until(tmp_path, 2, spec_text=spec_text)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store.at(results) as store:
        before = {t.trial_id: t for t in store.get_trials("k")}
        assert store.get_run("k")["status"] == "running"
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with Store.at(results) as store:
        after = store.get_trials("k")
        assert store.get_run("k")["status"] == "finished"
    assert [t.trial_id for t in after] == ["0000", "0001", "0002", "0003", "0004"]
    for tid, rec in before.items():  # finished trials were kept, not retrained
        assert next(t for t in after if t.trial_id == tid) == rec
