"""Stage 2 of the report, structure: the sections of a search run and of a comparison.

The sections of sweeps, range tests and denoising comparisons are in
:mod:`automnist.report.experiment_sections`; figures are drawn by :mod:`automnist.plots`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from automnist import plots
from automnist.aggregate import classification_report_frame, param_columns, param_name
from automnist.final import ensemble_summary, kept_model, members_summary, race_summary
from automnist.report.blocks import (
    Block,
    Section,
    cell,
    figure_block,
    format_duration,
    format_time,
    gallery_block,
    is_missing,
    kv_block,
    slug,
    table_block,
    text_block,
)
from automnist.report.describe import Description, RunView, best_row, config_of
from automnist.report.experiment_sections import denoise_section, lr_find_section, lr_used_section, sweep_section
from automnist.spec import value_label

__all__ = ["run_sections", "structure"]

#: Learning curves are drawn for this many best trials.
TOP_CURVES = 5
#: At most this many effect plots per run (the effect *table* lists every hyperparameter).
MAX_EFFECT_PLOTS = 12
#: Parallel coordinates draw at most this many trials (best quarter + a sample).
MAX_PARALLEL_LINES = 300


def summary_section(view: RunView, sid: str, level: int) -> Section:
    """The run at a glance: what, when, how long, the best trial, library versions, spec."""
    info, t, obj = view.info, view.trials, view.objective
    config = config_of(info)
    search = config.get("search") if isinstance(config.get("search"), dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    counts = t["status"].value_counts()
    budget = ", ".join(f"{k}={v}" for k, v in search.items()
                       if k in ("max_trials", "epochs", "time_budget", "cv", "n_iter", "factor", "repeats")
                       and v is not None)
    best = best_row(view)
    started, ended = info.get("started_at"), info.get("ended_at")
    wall = float(ended) - float(started) if ended and started and not is_missing(ended) else float("nan")
    items: list[tuple[str, Any]] = [
        ("Run", view.name),
        ("Kind / status", f"{info.get('kind', '')} / {info.get('status', '')}"),
        ("Data set", str(info.get("dataset") or data.get("dataset") or "–")
         + (f" (subset {data['subset']})" if data.get("subset") else "")),
        ("Strategy", str(info.get("strategy") or search.get("strategy") or "–")),
        ("Objective", "none: a suggested learning rate per optimizer" if view.kind == "lr_find"
         else f"{obj} ({'higher' if view.direction == 'max' else 'lower'} is better)"),
        ("Budget", budget or "–"),
        ("Seed", str(info.get("seed", "–"))),
        ("Spec", f"{info.get('spec_name', '')} (hash {info.get('spec_hash', '') or '–'})"),
        ("Started / ended", f"{format_time(started)} / {format_time(ended)}"),
        ("Wall time", format_duration(wall)),
        ("Sum of trial durations", format_duration(pd.to_numeric(t["duration_s"], errors="coerce").sum())),
        ("Trials", f"{len(t)} (ok {int(counts.get('ok', 0))}, failed {int(counts.get('failed', 0))}, "
                   f"infeasible {int(counts.get('infeasible', 0))})"),
    ]
    if best is not None:
        std = best.get(f"{obj}_std")
        spread = "" if is_missing(std) else f" ± {cell(std)[0]} over {int(best['n_folds'])} folds"
        score = cell(best[obj])[0] + spread
        items += [("Best trial", str(best["trial_id"])), (f"Best {obj}", score),
                  ("Best trial's test accuracy", best["test_accuracy"])]
    blocks = [kv_block(items)]
    if best is not None:
        config_rows = [(param_name(c), value_label(best[c]))
                       for c in param_columns(view.tables["leaderboard"]) if not is_missing(best[c])]
        blocks.append(table_block(pd.DataFrame(config_rows, columns=["hyperparameter", "value"]), "Best configuration"))
    versions = info.get("versions") if isinstance(info.get("versions"), dict) else {}
    if versions:
        blocks.append(table_block(pd.DataFrame(sorted(versions.items()), columns=["library", "version"]),
                                  "Library versions"))
    blocks.append(Block("pre", "Search spec", str(info.get("spec_text") or "(no spec text stored)")))
    return Section(sid, "Summary" if level == 2 else f"Summary of {view.name}", level, blocks)


def final_section(final: dict[str, Any], sid: str, level: int) -> Section:
    """The models kept after the search, on the test set: the search's best trial, its
    refit on training + validation images, the ensemble of the top trials."""
    rows = []
    best = final["search_best"]
    kept = kept_model(final)
    rows.append(("search's best trial", str(best.get("trial_id")), best.get("epochs"), best.get("images"),
                 best.get("test_accuracy"), "kept" if kept == "search" else ""))
    refit = final.get("refit")
    if isinstance(refit, dict):
        label = f"trained on {refit['on']}" if refit.get("on") else "refit on training + validation"
        used = ("in the ensemble" if kept == "ensemble" else "kept") if refit.get("kept") else \
            refit.get("error") or "not kept"
        rows.append((label, str(refit.get("trial_id")), refit.get("epochs"),
                     refit.get("images"), refit.get("test_accuracy"),
                     "; ".join(str(n) for n in (used, refit.get("search_ended"), race_summary(refit),
                                                  members_summary(refit)) if n)))
    ensemble = final.get("ensemble")
    if isinstance(ensemble, dict):
        rows.append((f"ensemble of {len(ensemble.get('members') or [])}", ", ".join(ensemble.get("members") or []),
                     None, None, ensemble.get("test_accuracy"),
                     "; ".join(n for n in ("kept" if kept == "ensemble" else ensemble.get("error"),
                                           ensemble_summary(ensemble)) if n)))
    frame = pd.DataFrame(rows, columns=["model", "trials", "epochs", "images", "test_accuracy", "note"])
    return Section(sid, "Final model", level, [table_block(
        frame, "search score and final models on the test set",
        note="The search chose by validation score only; the test set scores the models kept.")])


def run_sections(view: RunView, level: int, prefix: str) -> list[Section]:
    """Every section of one run's report, by its kind (``prefix`` makes the ids unique)."""
    t, obj, d, tables = view.trials, view.objective, view.direction, view.tables
    n_ok = int((t["status"] == "ok").sum()) if len(t) else 0
    sections = [summary_section(view, slug(prefix, "summary"), level)]
    if view.kind == "lr_find":  # no objective, models or test set: the curves are the result
        sections.append(lr_find_section(view, slug(prefix, "lr-find"), level))
        sections.append(failures_section(view, slug(prefix, "failures"), level))
        return sections
    if view.kind == "sweep":
        sections.append(sweep_section(view, slug(prefix, "sweep"), level))
    if view.kind == "denoise":
        sections.append(denoise_section(view, slug(prefix, "denoise"), level))
    if "lr_used" in tables:
        sections.append(lr_used_section(view, slug(prefix, "lr-used"), level))

    board = tables["leaderboard"]
    lb = Section(slug(prefix, "leaderboard"), "Leaderboard", level)
    if n_ok:
        lb.blocks.append(figure_block(plots.plot_leaderboard(t, obj, d), "", f"top trials by {obj}"))
    lb.blocks.append(table_block(board, f"{len(board)} ok trials ranked by {obj}",
                                 note="Failed and infeasible trials are excluded; fully trained trials rank "
                                 "first (a pruned, budget-cut or low-rung score is not a trained model's); ties "
                                 "share the lower rank; epochs / max_epochs and images are what each score was "
                                 "measured at; std is over CV folds (– without CV)."))
    sections.append(lb)
    final = config_of(view.info).get("final")
    if isinstance(final, dict) and final.get("search_best"):
        sections.append(final_section(final, slug(prefix, "final"), level))

    if view.kind == "search":
        sections.extend(effect_sections(view, level, prefix))
    sections.append(failures_section(view, slug(prefix, "failures"), level))

    if n_ok and view.kind == "search":
        par = Section(slug(prefix, "parallel"), "Parallel coordinates", level)
        note = (f"{MAX_PARALLEL_LINES} of {n_ok} ok trials drawn: the best quarter and a random sample."
                if n_ok > MAX_PARALLEL_LINES else "")
        par.blocks.append(figure_block(plots.plot_parallel(t, obj, d, MAX_PARALLEL_LINES), "",
                                       "parallel coordinates of the trials", note))
        sections.append(par)
    if n_ok:
        curves = Section(slug(prefix, "curves"), f"Learning curves of the top {TOP_CURVES} trials", level)
        curves.blocks.append(figure_block(plots.plot_learning_curves(view.history, t, TOP_CURVES, obj, d), "",
                                          "learning curves", "With CV, each epoch's value is the mean over folds."))
        sections.append(curves)

        cost = Section(slug(prefix, "cost"), f"{obj} vs training time and size", level)
        cost.blocks.append(figure_block(plots.plot_tradeoffs(t, obj, d), "", f"{obj} vs time and parameters"))
        sections.append(cost)

    sections.append(predictions_section(view, slug(prefix, "test"), level))
    return sections


def effect_sections(view: RunView, level: int, prefix: str) -> list[Section]:
    """Effects, significance and the grid pivot of a search (a sweep has its own analysis)."""
    t, obj, d, tables = view.trials, view.objective, view.direction, view.tables
    sections = []
    eff = Section(slug(prefix, "effects"), "Hyperparameter effects", level)
    varying = tables["varying"]
    if varying:
        eff.blocks.append(table_block(tables["effects"], f"{obj} at each value of each searched hyperparameter",
                                      note="Constant hyperparameters are omitted; numeric ranges with more than 10 "
                                      "distinct values are grouped into 4 quantile bins."))
        note = (f"Plots for the first {MAX_EFFECT_PLOTS} of {len(varying)} hyperparameters."
                if len(varying) > MAX_EFFECT_PLOTS else "")
        eff.blocks.append(gallery_block(((plots.plot_effect(t, p, obj, d), f"{obj} by {p}")
                                         for p in varying[:MAX_EFFECT_PLOTS]), note))
    else:
        eff.blocks.append(text_block("No hyperparameter took more than one value among the ok trials."))
    sections.append(eff)

    sig = Section(slug(prefix, "significance"), "Significance", level)
    sig.blocks.append(table_block(tables["compare_best"], "Is the best configuration better than the runner-up?",
                                  note="Paired test on the per-fold scores of the two best trials: Wilcoxon "
                                  "signed-rank with at least 6 paired folds, else a paired t-test; without "
                                  "folds no test is made. mean_diff is best minus runner-up."))
    if len(tables["significance"]):
        sig.blocks.append(table_block(tables["significance"], "Does each hyperparameter matter? (Kruskal-Wallis)",
                                      note="Groups are the values (or quantile bins) of a hyperparameter with at "
                                      "least 2 ok trials; values with fewer are left out; at least 2 groups "
                                      "are needed. n is the number of trials in the groups."))
    sections.append(sig)

    if view.grid is not None:
        row, col = view.grid
        grid = Section(slug(prefix, "grid"), f"Grid: {row} × {col}", level)
        grid.blocks.append(figure_block(plots.plot_pivot(t, row, col, obj), "", f"mean {obj} by {row} and {col}"))
        grid.blocks.append(table_block(tables["pivot"], f"mean {obj}", index=True))
        sections.append(grid)

    return sections


def failures_section(view: RunView, sid: str, level: int) -> Section:
    """The failed and infeasible trials with their errors."""
    fail = Section(sid, "Failed and infeasible trials", level)
    failed = view.tables["failures"]
    if len(failed):
        fail.blocks.append(table_block(failed, f"{len(failed)} trials did not finish"))
    else:
        fail.blocks.append(text_block("No failed or infeasible trials."))
    return fail


def predictions_section(view: RunView, sid: str, level: int) -> Section:
    """The best model on the test set: classification report, confusion, ROC, PR, images."""
    section = Section(sid, "Best model on the test set", level)
    p = view.predictions
    if p is None:
        section.blocks.append(text_block(f"Not available: {view.predictions_note}."))
        return section
    names = [str(c) for c in p["class_names"]]
    y_true = p["y_true"].astype(int)
    y_pred = p["y_prob"].argmax(axis=1)
    section.blocks.append(kv_block([("Trial", str(p["trial_id"])), ("Test images", len(y_true)),
                                    ("Test accuracy", float(np.mean(y_true == y_pred))), ("Classes", len(names))]))
    section.blocks.append(table_block(classification_report_frame(y_true, y_pred, names),
                                      "Classification report", index=True))
    section.blocks.append(gallery_block([
        (plots.plot_confusion(y_true, y_pred, names), "confusion matrix"),
        (plots.plot_roc(y_true, p["y_prob"], names), "ROC curves"),
        (plots.plot_pr(y_true, p["y_prob"], names), "precision-recall curves"),
    ]))
    if len(p["mis_images"]):
        figure = plots.plot_misclassified(p["mis_images"], p["mis_true"], p["mis_pred"], names)
        section.blocks.append(figure_block(figure, "", "misclassified test images"))
    if len(p["sample_images"]):
        section.blocks.append(figure_block(plots.plot_samples(p["sample_images"], p["sample_labels"], names),
                                           "", "sample training images"))
    return section


def comparison_sections(desc: Description) -> list[Section]:
    """Several runs side by side: summary, leaderboard and effects of shared hyperparameters."""
    obj, d, t = desc.objective, desc.direction, desc.trials
    sections = []
    overview = Section("comparison", "Runs side by side", 2)
    other = {v.objective for v in desc.runs} - {obj}
    if other:
        overview.blocks.append(text_block(f"The runs optimise different objectives; they are compared "
                                          f"on {obj} (also: {', '.join(sorted(other))})."))
    overview.blocks.append(table_block(desc.tables["summary"], "One row per run"))
    overview.blocks.append(figure_block(plots.plot_run_comparison(t, obj), "", f"{obj} per run"))
    board = desc.tables["leaderboard"]
    overview.blocks.append(figure_block(plots.plot_leaderboard(t, obj, d), "", "best trials of all runs"))
    overview.blocks.append(table_block(board, f"All {len(board)} ok trials ranked together by {obj}"))
    sections.append(overview)

    shared = Section("shared-effects", "Shared hyperparameters, per run", 2)
    eff = desc.tables["effects_by_run"]
    if len(eff):
        shared.blocks.append(table_block(eff, f"{obj} at each value, per run"))
        params = list(pd.unique(eff["param"]))[:MAX_EFFECT_PLOTS]
        shared.blocks.append(gallery_block((plots.plot_effect(t, p, obj, d), f"{obj} by {p} per run")
                                           for p in params))
    else:
        shared.blocks.append(text_block("The runs share no searched hyperparameter."))
    sections.append(shared)
    return sections


def structure(desc: Description) -> list[Section]:
    """Stage 2: the report's sections (a comparison first when there are several runs)."""
    if len(desc.runs) == 1:
        return run_sections(desc.runs[0], 2, "")
    sections = comparison_sections(desc)
    for i, view in enumerate(desc.runs):
        prefix = f"run{i + 1}"
        sections.append(Section(slug(prefix), f"Run {i + 1}: {view.name}", 2))
        sections.extend(run_sections(view, 3, prefix))
    return sections
