"""Stage 2 of the report, structure: the sections of the runs that are not searches --
one-factor-at-a-time sweeps, learning-rate range tests and denoising comparisons."""

from __future__ import annotations

from typing import Any

from automnist import plots
from automnist.experiments.lr_find_curve import RULE
from automnist.report.blocks import Block, Section, cell, figure_block, gallery_block, kv_block, table_block, text_block
from automnist.report.describe import RunView, config_of

__all__ = ["denoise_section", "lr_find_section", "lr_used_section", "missing_block", "sweep_section"]


def missing_block(view: RunView, what: str) -> Block:
    """Why a kind-specific section has nothing to show."""
    return text_block(f"Cannot show {what}: {view.notes.get(view.kind, 'no data')}.")


def _opened(view: RunView, sid: str, level: int, title: str, key: str, what: str) -> tuple[Section, bool]:
    """A new section, and whether its table ``key`` was computed (else the section says why not)."""
    section = Section(sid, title, level)
    if key not in view.tables:
        section.blocks.append(missing_block(view, what))
    return section, key in view.tables


def sweep_section(view: RunView, sid: str, level: int) -> Section:
    """Seed 004's figures 3.7-3.20 and its choices, with the numbers behind them."""
    section, ok = _opened(view, sid, level, "One-factor-at-a-time sweeps", "sweep", "the sweep analysis")
    if not ok:
        return section
    table, values = view.tables["sweep"], view.tables["sweep_values"]
    search = config_of(view.info).get("search") or {}
    repeats = int(search.get("repeats") or 1)
    cv = search.get("cv")
    runs = f"{repeats} seed{'s' if repeats > 1 else ''} per value" + (f", {cv}-fold CV each" if cv else "")
    alpha = search.get("chain_alpha")
    if search.get("chain") and alpha:
        how = (f"Chained with chain_alpha = {alpha:g}: a hyperparameter's best value (best mean {view.objective}) "
               f"replaced its baseline value before the next hyperparameter was swept only when Welch's t-test "
               f"against the baseline value's runs gave p < {alpha:g} (column \u201cp vs baseline\u201d); otherwise "
               "the baseline value stayed (\u201ccarried\u201d False). Rows marked \u201cbaseline changed\u201d "
               "were swept around earlier winners.")
    elif search.get("chain"):
        how = ("Chained (search.chain: true): each hyperparameter's winner, the value with the best mean "
               f"{view.objective}, was carried into the baseline before the next hyperparameter was swept, "
               "as seed 004 does by hand, however small its margin (search.chain_alpha carries only significant "
               "winners). Rows marked \u201cbaseline changed\u201d were swept around earlier winners.")
    else:
        how = ("Not chained: every hyperparameter was swept around the same initial baseline "
               "(set search.chain: true to carry each winner into the next baseline).")
    section.blocks.append(text_block(f"Every value was trained with all other hyperparameters at the "
                                     f"baseline; {runs}. {how}"))
    shown = table.rename(columns={
        "param": "hyperparameter", "n_values": "values", "best_mean": f"best mean {view.objective}",
        "runner_up": "runner-up", "runner_up_mean": "runner-up mean", "p_value": "p-value",
        "baseline_mean": "baseline mean", "p_vs_baseline": "p vs baseline", "baseline_changed": "baseline changed",
    }).drop(columns=["step", "objective"] + ([] if search.get("chain") else ["carried"]))
    section.blocks.append(table_block(shown, "Best value per hyperparameter", note=(
        f"margin: how much the best value beats the runner-up in {view.objective} (positive is better). "
        "p-value: Welch's t-test of the best value against the runner-up over their repeats (with one run per "
        "value but CV folds, from the fold mean and std: optimistic). n: runs (or folds) behind the best value.")))
    params = list(dict.fromkeys(values.loc[values["n"] > 0, "param"]))
    config = config_of(view.info)
    if params and not view.history.empty:
        figures = ((plots.plot_sweep_curves(view.history, view.trials, config, params=[p]),
                    f"validation accuracy and loss per epoch for each value of {p}") for p in params)
        section.blocks.append(gallery_block(figures, note=(
            "One panel per hyperparameter: validation accuracy and loss per epoch for each value (mean over "
            "seeds and folds, band: \u00b11 std); the baseline value is dashed.")))
    elif params:
        section.blocks.append(text_block("No per-epoch history was recorded for this sweep."))
    if params:
        section.blocks.append(figure_block(plots.plot_sweep_values(values, objective=view.objective), "",
                                           f"final {view.objective} per value", "Bars: mean over runs; whiskers: "
                                           "min to max; orange: the baseline value."))
    shown_values = values.drop(columns=["step", "trial_ids"]).rename(columns={
        "param": "hyperparameter", "is_baseline": "baseline", "baseline_changed": "baseline changed",
        "mean": f"mean {view.objective}", "std": "std", "test_accuracy": "mean test_accuracy"})
    section.blocks.append(table_block(shown_values, "Every value tried"))
    return section


def _lr_find_settings(settings: dict[str, Any]) -> list[tuple[str, str]]:
    """How the range test ran, from the settings stored with the run."""
    def shown(key: str) -> str:
        return cell(settings.get(key))[0]

    return [
        ("Learning rate", f"{shown('min_lr')} to {shown('max_lr')}, growing exponentially over "
                          f"{shown('batches')} batches of {shown('batch_size')}"),
        ("Loss smoothing", f"exponential moving average, beta {shown('beta')}, bias-corrected"),
        ("Stops when", f"the smoothed loss exceeds {shown('diverge')}x its minimum, or is NaN"),
        ("Suggested learning rate", str(settings.get("rule") or RULE)),
    ]


def lr_find_section(view: RunView, sid: str, level: int) -> Section:
    """The range test's settings, curves and suggested learning rate per optimizer."""
    section, ok = _opened(view, sid, level, "Learning-rate range test", "lr_curves", "the range test")
    if not ok:
        return section
    settings = config_of(view.info).get("lr_find") or {}
    if settings:
        section.blocks.append(kv_block(_lr_find_settings(settings)))
    section.blocks.append(figure_block(plots.plot_lr_find(view.tables["lr_curves"]), "",
                                       "loss against learning rate per optimizer",
                                       "Faint: raw per-batch loss; dot: the suggested learning rate."))
    section.blocks.append(table_block(view.tables["lr_suggestions"], "Suggested learning rate per optimizer",
                                      note="min_loss is the lowest smoothed loss and min_loss_lr where it was "
                                           "reached; last_lr is where the test stopped."))
    return section


def lr_used_section(view: RunView, sid: str, level: int) -> Section:
    """Which learning rates a ``from_lr_find`` run trained with, and the curves behind them."""
    section = Section(sid, "Learning rates from the range test", level)
    section.blocks.append(table_block(view.tables["lr_used"], "learning_rate: from_lr_find resolved to",
                                      note="Each optimizer trains with the suggestion of the newest range test "
                                           "of this spec and data set (automnist lr-find), or of one run for this "
                                           "search."))
    curves = view.tables.get("lr_used_curves")
    if curves is not None and len(curves):
        section.blocks.append(figure_block(plots.plot_lr_find(curves), "",
                                           "the range-test curves behind these learning rates"))
    return section


def _denoise_settings(note: dict[str, Any]) -> list[tuple[str, Any]]:
    """The noise, the denoising autoencoder and the classifier of a denoising comparison."""
    noise, ae = note.get("noise") or {}, note.get("denoise") or {}
    level_text = f"std {noise.get('std')}" if noise.get("kind") == "gaussian" else f"amount {noise.get('amount')}"
    return [
        ("Noise", f"{noise.get('kind', '?')}, {level_text}, on {'+'.join(noise.get('on') or [])} images"),
        ("Denoising autoencoder", f"Conv2D+MaxPooling encoder / Conv2D+UpSampling decoder, filters "
                                  f"{'-'.join(str(f) for f in ae.get('filters') or [])}, {ae.get('epochs')} "
                                  f"epochs, batch {ae.get('batch_size')}, trained noisy -> clean on the training "
                                  "images"),
        ("Autoencoder's final loss", note.get("denoiser_loss")),
        ("Classifier", f"the same configuration and seed under each condition, {note.get('epochs')} epochs"),
    ]


def denoise_section(view: RunView, sid: str, level: int) -> Section:
    """Seed 000 Q1-Q3: one classifier on clean, noisy and denoised images."""
    section, ok = _opened(view, sid, level, "Clean, noisy and denoised images", "denoise", "the denoising comparison")
    if not ok:
        return section
    note = config_of(view.info).get("denoise_compare") or {}
    if note.get("noise") or note.get("denoise"):
        section.blocks.append(kv_block(_denoise_settings(note)))
    table = view.tables["denoise"]
    section.blocks.append(figure_block(plots.plot_denoising(table), "",
                                       "test accuracy on clean, noisy and denoised images"))
    section.blocks.append(table_block(table.drop(columns=["run"]), "Test accuracy per condition",
                                      note="clean: no noise; noisy: noise added; denoised: the noisy images "
                                           "passed through the autoencoder before the classifier (train and test "
                                           "alike)."))
    return section
