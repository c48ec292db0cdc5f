"""What each ``automnist`` subcommand does: one function per subcommand, each a thin
layer over one library call, returning the exit code.

Light automnist modules are imported here; those that pull in pandas, Jinja2 or
TensorFlow (search, report, experiments) are imported by the commands that need them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from automnist.cli.outputs import export_mlflow, final_report, report_all, search_listeners
from automnist.data import available_datasets
from automnist.errors import SpecError, StoreError
from automnist.final import ensemble_summary, kept_model, members_summary, race_summary
from automnist.predict import export_model, predict_images
from automnist.records import ranked_trials
from automnist.runs import SearchResult
from automnist.space import active_params
from automnist.spec import SearchSpec, load_spec, value_label
from automnist.store import Store

__all__ = ["EXIT_USAGE", "HANDLERS"]

#: Exit code for bad input (an invalid spec, a bad option value), as argparse uses.
EXIT_USAGE = 2

_DEMO_SPEC = Path(__file__).parents[1] / "specs" / "demo.yaml"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _write_report(results: str, runs: list[str], out: str | None = None) -> Path | None:
    from automnist.report import write_report

    with Store.at(results, create=False) as store:
        return write_report(store, runs, out=Path(out) if out else None, results_dir=Path(results))


def _print_leaderboard(result: SearchResult, top: int = 10) -> None:
    spec = result.spec
    obj = spec.objective.name
    ok = ranked_trials(result.trials, obj, spec.objective.direction)
    n_failed = sum(t.status == "failed" for t in result.trials)
    n_inf = sum(t.status == "infeasible" for t in result.trials)
    print(f"\nrun {result.run}: {len(result.trials)} trials ({len(ok)} ok, {n_failed} failed, "
          f"{n_inf} infeasible) in {result.duration_s:.1f} s")
    if not ok:
        for t in result.trials[:5]:
            print(f"  trial {t.trial_id}: {t.status}: {t.error}")
        return
    print(f"{'rank':>4}  {'trial':>6}  {obj:>12}  {'test_acc':>8}  {'epochs':>13}  {'secs':>6}  params")
    for rank, t in enumerate(ok[:top], 1):
        shown = active_params(spec, t.params) or {}
        text = ", ".join(f"{k}={value_label(v)}" for k, v in shown.items())
        std = t.metrics.get(f"{obj}_std")
        score = f"{t.objective(obj):.4f}" + (f"±{std:.3f}" if std is not None else "")
        test = t.metrics.get("test_accuracy")
        trained = f"{t.epochs}/{t.max_epochs or t.epochs}" + (f" {t.stop_reason}" if t.stop_reason else "")
        print(f"{rank:>4}  {t.trial_id:>6}  {score:>12}  {'-' if test is None else f'{test:.4f}':>8}  "
              f"{trained:>13}  {t.duration_s:6.1f}  {text}")
    _print_final(result.final)


def _print_final(final: dict) -> None:
    """The models kept after the search (refit, ensemble), when there are any."""
    refit, ensemble = final.get("refit"), final.get("ensemble")
    if refit:
        what = ("in the ensemble" if kept_model(final) == "ensemble" else "kept") if refit.get("kept") else \
            f"not kept ({refit.get('error') or 'cut by the budget'})"
        test = refit.get("test_accuracy")
        for line in (refit.get("search_ended"), race_summary(refit)):
            if line:
                print(line)
        print(f"refit of trial {refit['trial_id']} on {refit.get('images')} images for {refit['epochs']} epochs: "
              f"test accuracy {'-' if test is None else f'{test:.4f}'}, {what}")
        if more := members_summary(refit):
            print(more)
    if ensemble and ensemble.get("test_accuracy") is not None:
        print(f"{ensemble_summary(ensemble)}: test accuracy {ensemble['test_accuracy']:.4f}, "
              f"{'kept' if ensemble.get('kept') else 'not kept'}")


def _search_and_report(spec: SearchSpec, args: argparse.Namespace, *, run_name: str | None, resume: bool) -> int:
    from automnist.search import run_search

    _quiet_tensorflow()
    listeners = search_listeners(args)  # live report, --tensorboard
    result = run_search(spec, results_dir=args.results, run_name=run_name, resume=resume,
                        data_dir=getattr(args, "data_dir", None), progress=not getattr(args, "quiet", False),
                        listeners=listeners)
    _print_leaderboard(result)
    if not getattr(args, "no_report", False):
        path = final_report(listeners) or _write_report(args.results, [result.run])
        if path is not None:
            print(f"report: {path}")
    return 0 if result.n_ok else 1


def cmd_search(args: argparse.Namespace) -> int:
    """``automnist search SPEC``: run the search, print the leaderboard, write the report."""
    spec = _spec_from_args(args)
    if args.resume and not args.run_name:
        raise StoreError("--resume needs --run-name NAME (see `automnist runs`)")
    if args.workers is not None:
        return _search_with_workers(spec, args)
    if args.dask:
        from automnist.scale.dask import dask_backend

        if args.n_jobs is None:  # joblib hands candidates to the cluster only when n_jobs allows it
            spec = spec.replace(n_jobs=-1)
        with dask_backend(args.dask, spec.search.strategy):
            return _search_and_report(spec, args, run_name=args.run_name, resume=args.resume)
    return _search_and_report(spec, args, run_name=args.run_name, resume=args.resume)


#: ``automnist search`` options a chief and its workers are started with.
_SHARED_OPTIONS = ("strategy", "max_trials", "epochs", "dataset", "subset", "seed", "data_dir", "time_budget", "cv",
                   "n_jobs", "results", "store")


def _search_with_workers(spec: SearchSpec, args: argparse.Namespace) -> int:
    """``automnist search SPEC --workers N``: a chief and N workers on this machine."""
    from automnist.scale.pool import search_with_workers

    shared = [f"--{key.replace('_', '-')}={getattr(args, key)}" for key in _SHARED_OPTIONS
              if getattr(args, key, None) is not None]
    result, outcome = search_with_workers(spec, args.spec, args.workers, shared, results_dir=args.results,
                                          run=args.run_name, resume=args.resume, progress=not args.quiet)
    _print_leaderboard(result)
    print(f"{len(result.trials)} trials from {args.workers} worker processes; logs in {outcome.logs}")
    for name in outcome.failed:
        print(f"{name} ended with exit code {outcome.codes[name]}: {outcome.last_lines.get(name, '')}", file=sys.stderr)
    if outcome.failed:
        print(f"automnist: run {result.run!r} is interrupted with its {len(result.trials)} finished trials kept; "
              f"continue it with --run-name {result.run} --resume", file=sys.stderr)
        return 1
    if not args.no_report:
        path = _write_report(args.results, [result.run])
        if path is not None:
            print(f"report: {path}")
    return 0 if result.n_ok else 1


def cmd_chief(args: argparse.Namespace) -> int:
    """``automnist chief SPEC --bind HOST:PORT``: create the run, serve its oracle, end it."""
    from automnist.scale.roles import CHIEF, enter_role
    from automnist.search import run_search

    _quiet_tensorflow()
    enter_role(CHIEF, args.bind)
    spec = _spec_from_args(args)
    if not args.quiet:
        print(f"chief of run {args.run_name}: serving the oracle on {args.bind}", flush=True)
    result = run_search(spec, results_dir=args.results, run_name=args.run_name, resume=args.resume,
                        data_dir=args.data_dir, progress=False, role=CHIEF)
    if not args.quiet:
        _print_leaderboard(result)
    if not args.no_report:
        path = _write_report(args.results, [result.run])
        if path is not None and not args.quiet:
            print(f"report: {path}")
    return 0 if result.n_ok else 1


def cmd_worker(args: argparse.Namespace) -> int:
    """``automnist worker SPEC --chief HOST:PORT``: train the trials the chief hands out."""
    from automnist.scale.roles import WORKER, enter_role, limit_threads
    from automnist.search import run_search

    _quiet_tensorflow()
    role = enter_role(WORKER, args.chief, args.tuner_id)
    spec = _spec_from_args(args)
    if args.threads is not None:
        if args.threads < 1:
            raise SpecError("", "--threads", f"must be an integer >= 1, got {args.threads}")
        limit_threads(args.threads)
    result = run_search(spec, results_dir=args.results, run_name=args.run_name, resume=True, data_dir=args.data_dir,
                        progress=False, role=WORKER)
    print(f"worker {role.tuner_id}: run {result.run} has {len(result.trials)} trials", flush=True)
    return 0


def _spec_from_args(args: argparse.Namespace) -> SearchSpec:
    """The spec file with the command line's overrides of ``automnist search`` / ``chief`` / ``worker``."""
    return load_spec(args.spec).replace(
        strategy=args.strategy, max_trials=args.max_trials, epochs=args.epochs, dataset=args.dataset,
        subset=args.subset, time_budget=args.time_budget, seed=args.seed, cv=args.cv, n_jobs=args.n_jobs,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """``automnist demo``: the packaged demo search on digits (continued when it exists)."""
    spec = load_spec(_DEMO_SPEC).replace(max_trials=args.max_trials, epochs=args.epochs)
    with Store.at(args.results) as store:
        exists = store.get_run(args.run_name) is not None
    if exists:
        print(f"run {args.run_name!r} exists in {args.results}; continuing it (finished trials are kept)")
    args.no_report = False
    return _search_and_report(spec, args, run_name=args.run_name, resume=exists)


def cmd_cv(args: argparse.Namespace) -> int:
    """``automnist cv SPEC``: k-fold cross-validation of one configuration; prints each fold."""
    from automnist.experiments.cv import cross_validate_spec

    if not 2 <= args.folds <= 100:  # the bounds of search.cv
        raise SpecError("", "--folds", f"must be an integer from 2 to 100, got {args.folds}")
    _quiet_tensorflow()
    spec = load_spec(args.spec).replace(epochs=args.epochs, dataset=args.dataset, subset=args.subset, seed=args.seed)
    result = cross_validate_spec(spec, args.folds, from_run=args.from_run, results_dir=args.results,
                                 run_name=args.run_name, data_dir=args.data_dir)
    record = result.trials[0]
    if record.status != "ok":
        print(f"cv {record.status}: {record.error}", file=sys.stderr)
        return 1
    obj = spec.objective.name
    print(f"run {result.run}: {args.folds}-fold CV of {spec.name}: {obj} mean {record.metrics[obj]:.4f}, "
          f"std {record.metrics.get(obj + '_std', float('nan')):.4f}")
    for f in record.folds:
        print(f"  fold {f['fold']}: {obj} {f.get(obj, float('nan')):.4f}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """``automnist runs``: one line per run in the store."""
    with Store.at(args.results, create=False) as store:
        frame, where = store.runs_frame(), store.where
    if frame.empty:
        print(f"no runs in {where}")
        return 0
    cols = [c for c in ("run", "kind", "strategy", "dataset", "status", "n_trials", "n_ok") if c in frame]
    print(frame[cols].to_string(index=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``automnist export RUN``: a run's trials as CSV, JSON or Markdown, or to MLflow (``--to mlflow``)."""
    from automnist.report import export_markdown, export_table

    if args.to == "mlflow":
        return export_mlflow(args)
    with Store.at(args.results, create=False) as store:
        store.require_run(args.run)
        text = export_markdown(store, args.run) if args.format == "md" else export_table(store, args.run, fmt=args.format)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``automnist report RUN...``: the HTML comparison report; ``--all``: every run's report and the index."""
    if args.all:
        return report_all(args)
    if not args.runs:
        raise SpecError("", "RUN", "name at least one run (see `automnist runs`), or pass --all")
    twice = sorted({r for r in args.runs if args.runs.count(r) > 1})
    if twice:
        raise SpecError("", "RUN", f"each run may be named once, got {twice[0]!r} twice")
    print(f"report: {_write_report(args.results, args.runs, args.out)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``automnist validate SPEC...``: one line per spec file, the error for a bad one."""
    bad = 0
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            bad += 1
            print(f"automnist: error: {exc}", file=sys.stderr)
            continue
        print(f"ok  {path}: {spec.name} ({spec.model}, {len(spec.tunable)} searched, "
              f"strategy {spec.search.strategy}, data {spec.data.dataset})")
    return EXIT_USAGE if bad else 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """``automnist datasets``: each data set, whether it was found, and where."""
    for info in available_datasets(args.data_dir):
        mark = "yes" if info.available else "no "
        note = f"  ({info.note})" if info.note else ""
        print(f"{mark}  {info.name:<14} {info.location}{note}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    """``automnist lr-find SPEC``: a range test per optimizer and its suggested learning rate."""
    from automnist.experiments.lr_find import lr_find
    from automnist.experiments.lr_find_spec import write_spec

    _quiet_tensorflow()
    original = load_spec(args.spec)
    spec = original.replace(dataset=args.dataset, subset=args.subset, seed=args.seed)
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()] if args.optimizers else None
    try:
        result = lr_find(spec, optimizers, min_lr=args.min_lr, max_lr=args.max_lr, batches=args.batches,
                         batch_size=args.batch_size, data_dir=args.data_dir, results_dir=args.results,
                         run_name=args.run_name, progress=not args.quiet)
    except ValueError as exc:
        print(f"automnist: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in result.lines():
        print(line)
    print(f"rule: {result.rule}")
    print(f"run: {result.run} in {args.store or Path(args.results) / 'automnist.db'}")
    if args.write_spec:
        path = write_spec(original, result.suggestions, args.write_spec, run=result.run)
        print(f"wrote {path}")
    return 0 if any(not math.isnan(v) for v in result.suggestions.values()) else 1


def cmd_compare_denoising(args: argparse.Namespace) -> int:
    """``automnist compare-denoising SPEC``: test accuracy on clean, noisy and denoised images."""
    from automnist.experiments.denoise import compare_denoising

    _quiet_tensorflow()
    spec = load_spec(args.spec).replace(epochs=args.epochs, dataset=args.dataset, subset=args.subset, seed=args.seed,
                                        denoise_epochs=args.denoise_epochs)
    table = compare_denoising(spec, data_dir=args.data_dir, results_dir=args.results, run_name=args.run_name)
    run = str(table["run"].iloc[0])
    print(f"run {run}: {spec.name} on clean, noisy and denoised images")
    for row in table.itertuples(index=False):
        score = "-" if row.status != "ok" else f"{row.test_accuracy:.4f}"
        print(f"  {row.condition:<9} test_accuracy {score}  ({row.status})")
    if not args.no_report:
        print(f"report: {_write_report(args.results, [run])}")
    return 0 if (table["status"] == "ok").all() else 1


def cmd_export_model(args: argparse.Namespace) -> int:
    """``automnist export-model RUN --out FILE.keras``: copy a run's best model."""
    print(f"wrote {export_model(args.run, args.out, results_dir=args.results)}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``automnist predict MODEL_OR_RUN IMAGE...``: the top classes of each image."""
    if not args.model.endswith(".keras") and not os.path.isfile(args.model):  # a run name: known? (one line if not)
        with Store.at(args.results, create=False) as store:
            store.require_run(args.model)
    _quiet_tensorflow()
    frame = predict_images(args.model, args.images, top=args.top, results_dir=args.results, invert=args.invert)
    for image, rows in frame.groupby("image", sort=False):
        print(image)
        for row in rows.itertuples(index=False):
            print(f"  {row.rank}. {row.class_name:<12} {row.probability:7.2%}")
    return 0


#: Subcommand name -> the function that runs it.
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "search": cmd_search,
    "chief": cmd_chief,
    "worker": cmd_worker,
    "cv": cmd_cv,
    "runs": cmd_runs,
    "export": cmd_export,
    "report": cmd_report,
    "validate": cmd_validate,
    "datasets": cmd_datasets,
    "demo": cmd_demo,
    "lr-find": cmd_lr_find,
    "compare-denoising": cmd_compare_denoising,
    "export-model": cmd_export_model,
    "predict": cmd_predict,
}
