"""aggregate: exact tables from small hand-made trial frames (no drawing)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from automnist import aggregate as ag

# Six ok trials (t4 ties t0), one failed, one infeasible.
#          id    k  opt     val_acc
_OK = [("t0", 3, "adam", 0.90), ("t1", 3, "sgd", 0.80), ("t2", 5, "adam", 0.95),
       ("t3", 5, "sgd", 0.85), ("t4", 7, "adam", 0.90), ("t5", 7, "sgd", 0.70)]


def trials_frame(run: str = "a", **extra: list) -> pd.DataFrame:
    """A frame shaped like Store.trials_frame (columns in contract order)."""
    rows = [*_OK, ("t6", 3, "adam", np.nan), ("t7", 7, "sgd", np.nan)]
    frame = pd.DataFrame({
        "run": run,
        "strategy": "grid",
        "trial_id": [r[0] for r in rows],
        "number": range(len(rows)),
        "status": ["ok"] * 6 + ["failed", "infeasible"],
        "param_k": [r[1] for r in rows],
        "param_opt": [r[2] for r in rows],
        "param_c": 1,
        **{f"param_{k}": v for k, v in extra.items()},
        "loss": 0.1,
        "accuracy": 0.99,
        "val_loss": [1 - r[3] for r in rows],
        "val_accuracy": [r[3] for r in rows],
        "test_loss": np.nan,
        "test_accuracy": [0.5, 0.51, 0.52, 0.53, 0.54, 0.55, np.nan, np.nan],
        "val_accuracy_std": [0.01] * 6 + [np.nan] * 2,
        "n_folds": [5, 5, 5, 5, 0, 0, 0, 0],
        "duration_s": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 1.0, 2.0],
        "n_params": pd.array([100, 200, 300, 400, 500, 600, None, None], dtype="Int64"),
        "epochs": 2,
        "seed": 0,
        "error": [None] * 6 + ["ResourceExhausted: OOM", "kernel 7 larger than input"],
        "started_at": 0.0,
        "ended_at": 1.0,
    })
    return frame


def folds_frame(scores: dict[str, list[float]], run: str = "a") -> pd.DataFrame:
    rows = [{"run": run, "trial_id": t, "fold": i, "val_accuracy": s, "val_loss": 1 - s}
            for t, values in scores.items() for i, s in enumerate(values)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- leaderboard


def test_leaderboard_ranks_ok_trials_best_first_ties_share_rank() -> None:
    board = ag.leaderboard(trials_frame())
    assert board["trial_id"].tolist() == ["t2", "t0", "t4", "t3", "t1", "t5"]
    assert board["rank"].tolist() == [1, 2, 2, 4, 5, 6]
    assert board.columns.tolist() == ["rank", "run", "trial_id", "param_k", "param_opt", "param_c", "val_accuracy",
                                      "val_accuracy_std", "n_folds", "test_accuracy", "duration_s", "n_params",
                                      "epochs", "max_epochs", "images", "stop_reason", "fully_trained"]
    assert board["val_accuracy"].tolist() == [0.95, 0.90, 0.90, 0.85, 0.80, 0.70]


def test_leaderboard_ranks_fully_trained_trials_before_partly_trained_ones() -> None:
    frame = trials_frame()
    frame["epochs"], frame["max_epochs"], frame["stop_reason"] = 9, 9, None
    frame.loc[frame["trial_id"] == "t2", ["epochs", "stop_reason"]] = [1, "pruned"]  # the best score, 1 epoch
    frame.loc[frame["trial_id"] == "t4", "epochs"] = 3  # Hyperband's low rung: 3 of 9 epochs
    frame.loc[frame["trial_id"] == "t3", ["epochs", "stop_reason"]] = [4, "early_stopping"]  # converged: full
    board = ag.leaderboard(frame)
    assert board["trial_id"].tolist() == ["t0", "t3", "t1", "t5", "t2", "t4"]
    assert board["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert board["fully_trained"].tolist() == [True, True, True, True, False, False]
    assert board[["epochs", "max_epochs"]].values.tolist()[-2:] == [[1, 9], [3, 9]]


def test_leaderboard_std_only_where_cv_was_used() -> None:
    board = ag.leaderboard(trials_frame()).set_index("trial_id")
    assert board.loc["t2", "val_accuracy_std"] == 0.01  # n_folds 5
    assert math.isnan(board.loc["t4", "val_accuracy_std"])  # n_folds 0: std dropped


def test_leaderboard_min_direction() -> None:
    board = ag.leaderboard(trials_frame(), direction="min")
    assert board["trial_id"].tolist() == ["t5", "t1", "t3", "t0", "t4", "t2"]
    assert board["rank"].tolist() == [1, 2, 3, 4, 4, 6]
    by_loss = ag.leaderboard(trials_frame(), objective="val_loss", direction="min")
    assert by_loss["trial_id"].tolist() == ["t2", "t0", "t4", "t3", "t1", "t5"]
    assert "val_loss_std" in by_loss.columns and by_loss["val_loss_std"].isna().all()


def test_leaderboard_ok_trial_without_objective_ranks_last_with_na() -> None:
    frame = trials_frame()
    frame.loc[frame["trial_id"] == "t2", "val_accuracy"] = np.nan
    board = ag.leaderboard(frame)
    assert board["trial_id"].iloc[-1] == "t2"
    assert board["rank"].iloc[-1] is pd.NA
    assert board["rank"].iloc[0] == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"objective": "val_f1"}, "objective: no column 'val_f1'"),
    ({"direction": "up"}, "direction: must be 'max' or 'min', got 'up'"),
])
def test_leaderboard_bad_arguments_say_what(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ag.leaderboard(trials_frame(), **kwargs)


# --------------------------------------------------------------------------- effects


def test_effects_exact_values_constant_params_omitted() -> None:
    table = ag.effects(trials_frame())
    assert table.columns.tolist() == ["param", "value", "mean", "std", "count", "best"]
    assert table["param"].tolist() == ["k", "k", "k", "opt", "opt"]  # param_c is constant
    assert table["value"].tolist() == [3, 5, 7, "adam", "sgd"]
    assert table["count"].tolist() == [2, 2, 2, 3, 3]
    np.testing.assert_allclose(table["mean"], [0.85, 0.90, 0.80, 0.95 / 3 + 1.8 / 3, 2.35 / 3])
    np.testing.assert_allclose(table["std"], [math.sqrt(0.005), math.sqrt(0.005), math.sqrt(0.02),
                                              math.sqrt(0.0025 / 3), math.sqrt(0.0175 / 3)])
    assert table["best"].tolist() == [0.90, 0.95, 0.90, 0.95, 0.85]


def test_effects_best_follows_direction() -> None:
    table = ag.effects(trials_frame(), objective="val_loss", direction="min")
    np.testing.assert_allclose(table["best"], [0.10, 0.05, 0.10, 0.05, 0.15])


def test_effects_bins_a_continuous_range_into_quantiles() -> None:
    frame = pd.DataFrame({"run": "a", "trial_id": [f"t{i}" for i in range(12)], "status": "ok",
                          "param_units": range(1, 13), "val_accuracy": [i / 100 for i in range(1, 13)]})
    table = ag.effects(frame)
    assert table["value"].tolist() == ["[1, 3]", "[4, 6]", "[7, 9]", "[10, 12]"]
    assert table["count"].tolist() == [3, 3, 3, 3]
    np.testing.assert_allclose(table["mean"], [0.02, 0.05, 0.08, 0.11])
    points = ag.effect_points(frame, "units")
    assert list(points["level"].cat.categories) == table["value"].tolist()
    assert points["level"].tolist()[:4] == ["[1, 3]", "[1, 3]", "[1, 3]", "[4, 6]"]


def test_effect_points_levels_match_effects_rows() -> None:
    points = ag.effect_points(trials_frame(), "param_k")
    assert list(points["level"].cat.categories) == ["3", "5", "7"]
    assert points["trial_id"].tolist() == ["t0", "t1", "t2", "t3", "t4", "t5"]
    with pytest.raises(ValueError, match="param: no hyperparameter named 'units' in the trials frame; known: k, opt, c"):
        ag.effect_points(trials_frame(), "units")



def test_float_noise_is_one_level() -> None:
    """TPE's stepped float 0.1 * 3 = 0.30000000000000004 and a portfolio's 0.3 are one
    level (they used to be two levels with one label, and the report's effect plot failed)."""
    frame = trials_frame(dropout=[0.3, 0.1 * 3, 0.0, 0.4, 0.1 * 3, 0.0, 0.4, 0.4])
    points = ag.effect_points(frame, "param_dropout")
    assert list(points["level"].cat.categories) == ["0", "0.3", "0.4"]
    assert ag.effects(frame)[lambda t: t["param"] == "dropout"]["value"].tolist() == [0.0, 0.3, 0.4]


def test_effects_by_run_keeps_shared_params_and_constant_runs() -> None:
    a = trials_frame("a")
    b = trials_frame("b").drop(columns=["param_opt"])
    b["param_k"] = 3
    both = pd.concat([a, b], ignore_index=True)
    table = ag.effects_by_run(both)
    assert table.columns.tolist() == ["run", "param", "value", "mean", "std", "count", "best"]
    assert table[["run", "param", "value", "count"]].values.tolist() == [
        ["a", "k", 3, 2], ["a", "k", 5, 2], ["a", "k", 7, 2], ["b", "k", 3, 6]]
    assert table["mean"].iloc[-1] == pytest.approx(sum(r[3] for r in _OK) / 6)


# --------------------------------------------------------------------------- pivot, failures


def test_pivot_two_hyperparameters() -> None:
    table = ag.pivot(trials_frame(), "k", "param_opt")
    assert table.index.tolist() == [3, 5, 7] and table.index.name == "k"
    assert table.columns.tolist() == ["adam", "sgd"] and table.columns.name == "opt"
    np.testing.assert_allclose(table.to_numpy(), [[0.90, 0.80], [0.95, 0.85], [0.90, 0.70]])


def test_pivot_missing_cell_is_nan_and_aggfunc_applies() -> None:
    frame = trials_frame()
    frame = frame[frame["trial_id"] != "t5"]  # (7, sgd) now only has the infeasible t7
    table = ag.pivot(frame, "k", "opt", aggfunc="count")
    assert table.loc[7, "adam"] == 1
    assert math.isnan(table.loc[7, "sgd"])
    with pytest.raises(ValueError, match="col_param: must differ from row_param"):
        ag.pivot(frame, "k", "k")


def test_failures_lists_failed_and_infeasible_with_errors() -> None:
    table = ag.failures(trials_frame())
    assert table.columns.tolist()[:5] == ["run", "trial_id", "status", "error", "duration_s"]
    assert table[["trial_id", "status", "error"]].values.tolist() == [
        ["t6", "failed", "ResourceExhausted: OOM"], ["t7", "infeasible", "kernel 7 larger than input"]]
    assert table["param_k"].tolist() == [3, 7]


# --------------------------------------------------------------------------- compare_best


def test_compare_best_without_folds_makes_no_claim() -> None:
    row = ag.compare_best(trials_frame(), None).iloc[0]
    assert (row["best"], row["runner_up"]) == ("t2", "t0")
    assert row["test"] == "none (no folds)"
    assert math.isnan(row["p_value"]) and math.isnan(row["statistic"])
    assert row["n"] == 0
    assert row["mean_diff"] == pytest.approx(0.05)


def test_compare_best_paired_t_test_below_six_folds() -> None:
    best = [0.96, 0.97, 0.98, 0.99, 1.00]
    second = [0.95, 0.95, 0.95, 0.95, 0.95]  # differences 0.01 .. 0.05
    row = ag.compare_best(trials_frame(), folds_frame({"t2": best, "t0": second})).iloc[0]
    assert row["test"] == "paired t-test"
    assert row["n"] == 5
    assert row["mean_diff"] == pytest.approx(0.03)
    t = 0.03 / (math.sqrt(0.00025) / math.sqrt(5))  # mean / (sd / sqrt(n)), sd of 0.01..0.05
    assert row["statistic"] == pytest.approx(t)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(t, df=4))


def test_compare_best_wilcoxon_from_six_folds() -> None:
    best = [0.91, 0.92, 0.93, 0.94, 0.95, 0.96]
    second = [0.905, 0.91, 0.915, 0.92, 0.925, 0.93]  # all six differences positive and distinct
    row = ag.compare_best(trials_frame(), folds_frame({"t2": best, "t0": second})).iloc[0]
    assert row["test"] == "wilcoxon signed-rank"
    assert row["n"] == 6
    assert row["statistic"] == 0.0
    assert row["p_value"] == pytest.approx(2 / 2**6)  # exact: only the all-positive sign pattern, two-sided


def test_compare_best_folds_of_only_one_trial_is_no_test() -> None:
    row = ag.compare_best(trials_frame(), folds_frame({"t2": [0.9, 0.9, 0.9]})).iloc[0]
    assert row["test"] == "none (no folds)"
    assert math.isnan(row["p_value"])


def test_compare_best_one_row_per_run_and_too_few_trials() -> None:
    single = trials_frame("b")
    single = single[single["trial_id"].isin(["t2", "t6"])]
    table = ag.compare_best(pd.concat([trials_frame("a"), single]), None)
    assert table["run"].tolist() == ["a", "b"]
    assert table["test"].iloc[1] == "none (fewer than 2 ok trials)"
    assert table["best"].iloc[1] == "t2" and pd.isna(table["runner_up"].iloc[1])


# --------------------------------------------------------------------------- param_significance


def test_param_significance_kruskal_exact() -> None:
    table = ag.param_significance(trials_frame()).set_index("param")
    assert table.index.tolist() == ["k", "opt"]
    # k: ranks of (.9,.8 | .95,.85 | .9,.7) with the tie correction 1 - 6/210
    h_k = (12 / 42 * (6.5**2 / 2 + 9**2 / 2 + 5.5**2 / 2) - 21) / (1 - 6 / 210)
    assert table.loc["k", "statistic"] == pytest.approx(h_k)
    assert table.loc["k", "p_value"] == pytest.approx(math.exp(-h_k / 2))  # chi2 with 2 df
    h_opt = (12 / 42 * (15**2 / 3 + 6**2 / 3) - 21) / (1 - 6 / 210)
    assert table.loc["opt", "statistic"] == pytest.approx(h_opt)
    assert table.loc["opt", "p_value"] == pytest.approx(stats.chi2.sf(h_opt, 1))
    assert table.loc["k", ["n_groups", "n"]].tolist() == [3, 6]
    assert table.loc["k", "reason"] == ""


def test_param_significance_small_groups_left_out_or_untestable() -> None:
    frame = trials_frame(units=[64, 64, 128, 128, 128, 256, 64, 64],
                         lr=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    table = ag.param_significance(frame).set_index("param")
    assert table.loc["units", ["n_groups", "n"]].tolist() == [2, 5]
    assert table.loc["units", "reason"] == "1 value(s) with < 2 ok trials left out"
    expected = stats.kruskal([0.90, 0.80], [0.95, 0.85, 0.90])
    assert table.loc["units", "p_value"] == pytest.approx(expected.pvalue)
    assert table.loc["lr", "n_groups"] == 0
    assert math.isnan(table.loc["lr", "p_value"])
    assert table.loc["lr", "reason"].startswith("not testable: fewer than 2 values with >= 2 ok trials")


def test_param_significance_identical_scores_not_testable() -> None:
    frame = trials_frame()
    frame["val_accuracy"] = 0.5
    table = ag.param_significance(frame)
    assert table["reason"].tolist() == ["not testable: all objective values are identical"] * 2
    assert table["p_value"].isna().all()


# --------------------------------------------------------------------------- run_summary


def test_run_summary_one_row_per_run() -> None:
    b = trials_frame("b").iloc[[1, 6]]  # one ok (0.80), one failed
    runs = pd.DataFrame({"run": ["a", "b"], "strategy": ["grid", "sklearn-grid"], "dataset": "digits",
                         "status": ["finished", "running"], "started_at": [100.0, 200.0],
                         "ended_at": [160.0, np.nan]})
    table = ag.run_summary(runs, pd.concat([trials_frame("a"), b])).set_index("run")
    assert table.loc["a", ["n_trials", "n_ok", "n_failed", "n_infeasible"]].tolist() == [8, 6, 1, 1]
    assert table.loc["a", "best_trial"] == "t2"
    assert table.loc["a", "best_value"] == 0.95
    assert table.loc["a", "best_std"] == 0.01
    assert table.loc["a", "best_test_accuracy"] == 0.52
    assert table.loc["a", "best_config"] == "k=5, opt=adam, c=1"
    assert table.loc["a", "trials_duration_s"] == 213.0
    assert table.loc["a", "wall_s"] == 60.0
    assert table.loc["b", ["n_trials", "n_ok", "n_failed"]].tolist() == [2, 1, 1]
    assert table.loc["b", "best_trial"] == "t1" and math.isnan(table.loc["b", "wall_s"])
    assert table.loc["b", "strategy"] == "sklearn-grid"


# --------------------------------------------------------------------------- plot numbers


def test_learning_curve_data_top_k_fold_means() -> None:
    rows = []
    for trial, offset in (("t2", 0.0), ("t0", 0.1), ("t5", 0.2)):
        for fold in (0, 1):
            for epoch in (1, 2):
                for metric in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
                    rows.append({"run": "a", "trial_id": trial, "fold": fold, "epoch": epoch, "metric": metric,
                                 "value": offset + epoch + fold})  # fold mean: offset + epoch + 0.5
    curves = ag.learning_curve_data(pd.DataFrame(rows), trials_frame(), k=2)
    assert curves.columns.tolist() == ["rank", "run", "trial_id", "label", "quantity", "split", "epoch", "value"]
    assert curves["trial_id"].unique().tolist() == ["t2", "t0"]
    assert len(curves) == 2 * 4 * 2  # trials x metrics (lr dropped) x epochs
    t0_val_loss = curves[(curves["trial_id"] == "t0") & (curves["quantity"] == "loss")
                         & (curves["split"] == "validation")]
    assert t0_val_loss["value"].tolist() == pytest.approx([1.6, 2.6])
    assert curves["label"].iloc[0] == "#1 t2"


def test_learning_curve_data_empty_history() -> None:
    empty = pd.DataFrame(columns=["run", "trial_id", "fold", "epoch", "metric", "value"])
    assert ag.learning_curve_data(empty, trials_frame()).empty
    with pytest.raises(ValueError, match="k: must be >= 1, got 0"):
        ag.learning_curve_data(empty, trials_frame(), k=0)


def test_parallel_data_positions() -> None:
    data = ag.parallel_data(trials_frame())
    assert data["axis"].unique().tolist() == ["k", "opt", "val_accuracy"]
    k = data[data["axis"] == "k"]
    assert k["position"].tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    opt = data[data["axis"] == "opt"]
    assert opt["kind"].unique().tolist() == ["categorical"]
    assert opt["position"].tolist() == [0.0, 1.0] * 3
    objective = data[data["axis"] == "val_accuracy"]
    np.testing.assert_allclose(objective["position"], [0.8, 0.4, 1.0, 0.6, 0.8, 0.0])


def test_parallel_data_log_axis_and_downsampling() -> None:
    frame = trials_frame(lr=[1e-4, 1e-3, 1e-2, 1e-3, 1e-4, 1e-2, 1e-3, 1e-3])
    lr = ag.parallel_data(frame).query("axis == 'lr'")
    np.testing.assert_allclose(lr["position"], [0.0, 0.5, 1.0, 0.5, 0.0, 1.0])
    small = ag.parallel_data(frame, max_lines=4)
    kept = small.drop_duplicates("trial_id")["trial_id"].tolist()
    assert len(kept) == 4 and kept[0] == "t2"  # the best quarter (1 trial) always kept


def test_roc_and_pr_curve_data_match_sklearn_examples() -> None:
    y_true = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    prob = np.column_stack([1 - p1, p1])
    roc = ag.roc_curve_data(y_true, prob, ["no", "yes"])
    yes = roc[roc["class"] == "yes"]
    assert yes["fpr"].tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert yes["tpr"].tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert yes["auc"].unique().tolist() == [0.75]
    pr = ag.pr_curve_data(y_true, prob, ["no", "yes"])
    yes = pr[pr["class"] == "yes"]
    np.testing.assert_allclose(yes["precision"], [0.5, 2 / 3, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(yes["recall"], [1.0, 1.0, 0.5, 0.5, 0.0])
    assert yes["ap"].iloc[0] == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="class_names: expected 2 names"):
        ag.roc_curve_data(y_true, prob, ["a", "b", "c"])


def test_roc_skips_a_class_without_positives() -> None:
    prob = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    roc = ag.roc_curve_data(np.array([0, 1]), prob)
    assert roc["class"].unique().tolist() == ["0", "1"]


def test_confusion_and_classification_report_frames() -> None:
    y_true, y_pred = [0, 1, 2, 2], [0, 2, 2, 1]
    cm = ag.confusion_frame(y_true, y_pred, ["a", "b", "c"])
    assert cm.index.name == "true" and cm.columns.name == "predicted"
    assert cm.to_numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    report = ag.classification_report_frame(y_true, y_pred, ["a", "b", "c"])
    assert report.index.tolist() == ["a", "b", "c", "accuracy", "macro avg", "weighted avg"]
    assert report.columns.tolist() == ["precision", "recall", "f1-score", "support"]
    assert report.loc["c", ["precision", "recall", "f1-score"]].tolist() == [0.5, 0.5, 0.5]
    assert report.loc["accuracy", "f1-score"] == 0.5 and report.loc["accuracy", "support"] == 4
    assert report["support"].tolist() == [1, 1, 2, 4, 4, 4]
