"""The ``automnist`` command: a thin argparse layer over the library.

Every subcommand maps to one library call.  TensorFlow is imported only by the
subcommands that train, so ``automnist --help`` answers at once.  Errors that automnist
raises on purpose (bad spec, missing data, unknown run) print one line and exit
non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]

DEFAULT_RESULTS = os.environ.get("AUTOMNIST_RESULTS", "results")
EXIT_USAGE = 2


def _add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=DEFAULT_RESULTS, metavar="DIR",
                   help="output root holding automnist.db and one folder per run (default: %(default)s)")


def _add_search_overrides(p: argparse.ArgumentParser, *, strategies: tuple[str, ...]) -> None:
    p.add_argument("--strategy", choices=strategies, help="override search.strategy")
    p.add_argument("--max-trials", type=int, metavar="N", help="override search.max_trials")
    p.add_argument("--epochs", type=int, metavar="N", help="override search.epochs")
    p.add_argument("--dataset", metavar="NAME", help="override data.dataset (see `automnist datasets`)")
    p.add_argument("--subset", type=int, metavar="N", help="train on a stratified subset of N images")
    p.add_argument("--time-budget", type=float, metavar="SECONDS", help="stop starting trials after this long")
    p.add_argument("--seed", type=int, metavar="S", help="override search.seed")
    p.add_argument("--cv", type=int, metavar="K", help="k-fold cross-validation inside every trial")
    p.add_argument("--n-jobs", type=int, metavar="N", help="parallel jobs for scikit-learn strategies")
    p.add_argument("--data-dir", metavar="DIR", help="look for data set files here first (also: AUTOMNIST_DATA)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """--dataset, --subset, --seed and --data-dir of the commands that train one configuration."""
    p.add_argument("--dataset", metavar="NAME", help="override data.dataset (see `automnist datasets`)")
    p.add_argument("--subset", type=int, metavar="N", help="use a stratified subset of N training images")
    p.add_argument("--seed", type=int, metavar="S", help="override search.seed")
    p.add_argument("--data-dir", metavar="DIR", help="look for data set files here first (also: AUTOMNIST_DATA)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from automnist.spec import STRATEGIES

    parser = argparse.ArgumentParser(
        prog="automnist",
        description="AutoML searches for Keras image classifiers: declarative YAML search spaces, "
        "Keras Tuner and scikit-learn strategies, a results store and HTML comparison reports.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("search", help="run the search a spec describes")
    p.add_argument("spec", help="search-space YAML file")
    _add_search_overrides(p, strategies=STRATEGIES)
    p.add_argument("--run-name", metavar="NAME", help="name of the run in the store (default: <spec>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue --run-name without repeating finished trials")
    p.add_argument("--no-report", action="store_true", help="do not write results/<run>/report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_results(p)

    p = sub.add_parser("cv", help="k-fold cross-validation of the spec's fixed (or a run's best) configuration")
    p.add_argument("spec", help="search-space YAML file")
    p.add_argument("--folds", type=int, default=10, metavar="K", help="stratified folds (default: %(default)s)")
    p.add_argument("--from-run", metavar="RUN", help="evaluate the best trial of this run instead of the defaults")
    p.add_argument("--epochs", type=int, metavar="N", help="override search.epochs")
    _add_data_options(p)
    p.add_argument("--run-name", metavar="NAME")
    _add_results(p)

    p = sub.add_parser("runs", help="list the runs in the store")
    _add_results(p)

    p = sub.add_parser("export", help="print a run's trials (one row per trial)")
    p.add_argument("run")
    p.add_argument("--format", choices=("csv", "json", "md"), default="csv")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    _add_results(p)

    p = sub.add_parser("report", help="write the HTML comparison report of one or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", metavar="FILE", help="report path (default: results/<run>/report.html)")
    _add_results(p)

    p = sub.add_parser("validate", help="check spec files; print one line per file")
    p.add_argument("specs", nargs="+", metavar="SPEC")

    p = sub.add_parser("datasets", help="list the data sets and where they were found")
    p.add_argument("--data-dir", metavar="DIR")

    p = sub.add_parser("lr-find", help="learning-rate range test per optimizer; prints a suggested learning rate each")
    p.add_argument("spec", help="search-space YAML file (its baseline configuration is tested)")
    p.add_argument("--optimizers", metavar="LIST",
                   help="comma-separated, e.g. adam,sgd,rmsprop,adagrad,adadelta,nadam (default: the spec's)")
    p.add_argument("--min-lr", type=float, default=1e-6, metavar="LR", help="first learning rate (default: %(default)g)")
    p.add_argument("--max-lr", type=float, default=100.0, metavar="LR", help="last learning rate (default: %(default)g)")
    p.add_argument("--batches", type=int, default=100, metavar="N", help="batches from min to max (default: %(default)s)")
    p.add_argument("--batch-size", type=int, metavar="N", help="default: the spec's baseline batch_size")
    p.add_argument("--write-spec", metavar="OUT.yaml", help="write a copy of the spec with the suggested learning rate(s)")
    _add_data_options(p)
    p.add_argument("--run-name", metavar="NAME", help="name of the run in the store (default: <spec>-lr_find-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_results(p)

    p = sub.add_parser("compare-denoising",
                       help="one classifier on clean, noisy and denoised images (needs data.noise; seed 000 Q1-Q3)")
    p.add_argument("spec", help="search-space YAML file with data.noise (and optionally denoise:)")
    p.add_argument("--epochs", type=int, metavar="N", help="classifier epochs (override search.epochs)")
    p.add_argument("--denoise-epochs", type=int, metavar="N", help="autoencoder epochs (override denoise.epochs)")
    _add_data_options(p)
    p.add_argument("--run-name", metavar="NAME", help="name of the run in the store (default: <spec>-denoise-<time>)")
    p.add_argument("--no-report", action="store_true", help="do not write results/<run>/report.html")
    _add_results(p)

    p = sub.add_parser("export-model", help="copy a run's best model (best.keras) to a file")
    p.add_argument("run")
    p.add_argument("--out", required=True, metavar="FILE.keras", help="destination file (or directory)")
    _add_results(p)

    p = sub.add_parser("predict", help="classify image files with a saved model or a run's best model")
    p.add_argument("model", metavar="MODEL_OR_RUN", help="a .keras file or a run name")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per image (default: %(default)s)")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="invert dark-on-light drawings (auto: grayscale images with a bright border)")
    _add_results(p)

    p = sub.add_parser("demo", help="a small search on digits, with an HTML report (a few minutes on 2 cores)")
    p.add_argument("--run-name", default="demo", metavar="NAME")
    p.add_argument("--max-trials", type=int, metavar="N")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--quiet", action="store_true")
    _add_results(p)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"automnist {version('automnist')}")
        return 0
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    from automnist.errors import AutomnistError, SpecError

    handler = _HANDLERS[args.command]
    previous = _interrupt_on_sigterm()
    try:
        return handler(args)
    except SpecError as exc:
        print(f"automnist: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AutomnistError as exc:
        print(f"automnist: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("automnist: interrupted; finished trials are in the store (continue with --resume)", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt_on_sigterm() -> Any:
    """Make SIGTERM (``kill``, ``timeout``, a CI job limit) end a command like Ctrl-C: the run
    is marked interrupted and keeps its finished trials.  Returns the previous handler
    (None when not in the main thread, where handlers cannot be set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "strategy": getattr(args, "strategy", None),
        "max_trials": getattr(args, "max_trials", None),
        "epochs": getattr(args, "epochs", None),
        "dataset": getattr(args, "dataset", None),
        "subset": getattr(args, "subset", None),
        "time_budget": getattr(args, "time_budget", None),
        "seed": getattr(args, "seed", None),
        "cv": getattr(args, "cv", None),
        "n_jobs": getattr(args, "n_jobs", None),
    }


def _search_and_report(spec: Any, args: argparse.Namespace, *, run_name: str | None, resume: bool) -> int:
    from automnist.search import run_search

    _quiet_tensorflow()
    result = run_search(
        spec,
        results_dir=args.results,
        run_name=run_name,
        resume=resume,
        data_dir=getattr(args, "data_dir", None),
        progress=not getattr(args, "quiet", False),
    )
    _print_leaderboard(result)
    if not getattr(args, "no_report", False):
        path = _write_report(args.results, [result.run])
        if path is not None:
            print(f"report: {path}")
    return 0 if result.n_ok else 1


def _cmd_search(args: argparse.Namespace) -> int:
    from automnist.spec import load_spec

    spec = load_spec(args.spec).replace(**_overrides(args))
    if args.resume and not args.run_name:
        from automnist.errors import StoreError

        raise StoreError("--resume needs --run-name NAME (see `automnist runs`)")
    return _search_and_report(spec, args, run_name=args.run_name, resume=args.resume)


def _print_leaderboard(result: Any, top: int = 10) -> None:
    spec = result.spec
    obj = spec.objective.name
    ok = [t for t in result.trials if t.status == "ok" and t.objective(obj) is not None]
    ok.sort(key=lambda t: t.objective(obj), reverse=spec.objective.direction == "max")
    n_failed = sum(t.status == "failed" for t in result.trials)
    n_inf = sum(t.status == "infeasible" for t in result.trials)
    print(f"\nrun {result.run}: {len(result.trials)} trials ({len(ok)} ok, {n_failed} failed, "
          f"{n_inf} infeasible) in {result.duration_s:.1f} s")
    if not ok:
        for t in result.trials[:5]:
            print(f"  trial {t.trial_id}: {t.status}: {t.error}")
        return
    from automnist.space import active_params
    from automnist.spec import value_label

    print(f"{'rank':>4}  {'trial':>6}  {obj:>12}  {'test_acc':>8}  {'secs':>6}  params")
    for rank, t in enumerate(ok[:top], 1):
        shown = active_params(spec, t.params) or {}
        text = ", ".join(f"{k}={value_label(v)}" for k, v in shown.items())
        std = t.metrics.get(f"{obj}_std")
        score = f"{t.objective(obj):.4f}" + (f"±{std:.3f}" if std is not None else "")
        test = t.metrics.get("test_accuracy")
        print(f"{rank:>4}  {t.trial_id:>6}  {score:>12}  {'-' if test is None else f'{test:.4f}':>8}  "
              f"{t.duration_s:6.1f}  {text}")


def _write_report(results: str, runs: list[str], out: str | None = None) -> Path | None:
    from automnist.report import write_report
    from automnist.store import Store

    with Store.at(results) as store:
        return write_report(store, runs, out=Path(out) if out else None, results_dir=Path(results))


def _cmd_cv(args: argparse.Namespace) -> int:
    from automnist.estimator import cross_validate_spec
    from automnist.spec import load_spec

    if args.folds < 2:
        from automnist.errors import SpecError

        raise SpecError("", "--folds", f"must be an integer >= 2, got {args.folds}")
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


def _cmd_runs(args: argparse.Namespace) -> int:
    from automnist.store import Store

    with Store.at(args.results) as store:
        frame = store.runs_frame()
    if frame.empty:
        print(f"no runs in {Path(args.results) / 'automnist.db'}")
        return 0
    cols = [c for c in ("run", "kind", "strategy", "dataset", "status", "n_trials", "n_ok") if c in frame]
    print(frame[cols].to_string(index=False))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from automnist.report import export_markdown, export_table
    from automnist.store import Store

    with Store.at(args.results) as store:
        store.require_run(args.run)
        text = export_markdown(store, args.run) if args.format == "md" else export_table(store, args.run, fmt=args.format)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    path = _write_report(args.results, args.runs, args.out)
    print(f"report: {path}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from automnist.errors import SpecError
    from automnist.spec import load_spec

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


def _cmd_datasets(args: argparse.Namespace) -> int:
    from automnist.data import available_datasets

    for info in available_datasets(args.data_dir):
        mark = "yes" if info.available else "no "
        note = f"  ({info.note})" if info.note else ""
        print(f"{mark}  {info.name:<14} {info.location}{note}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from automnist.spec import load_spec

    spec_path = Path(__file__).parent / "specs" / "demo.yaml"
    spec = load_spec(spec_path).replace(max_trials=args.max_trials, epochs=args.epochs)
    from automnist.store import Store

    with Store.at(args.results) as store:
        exists = store.get_run(args.run_name) is not None
    if exists:
        print(f"run {args.run_name!r} exists in {args.results}; continuing it (finished trials are kept)")
    args.no_report = False
    return _search_and_report(spec, args, run_name=args.run_name, resume=exists)


def _cmd_lr_find(args: argparse.Namespace) -> int:
    import math

    from automnist.experiments.lr_find import lr_find, write_spec
    from automnist.spec import load_spec

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
    print(f"run: {result.run} in {Path(args.results) / 'automnist.db'}")
    if args.write_spec:
        path = write_spec(original, result.suggestions, args.write_spec, run=result.run)
        print(f"wrote {path}")
    return 0 if any(not math.isnan(v) for v in result.suggestions.values()) else 1


def _cmd_compare_denoising(args: argparse.Namespace) -> int:
    from automnist.experiments.denoise import compare_denoising
    from automnist.spec import load_spec

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


def _cmd_export_model(args: argparse.Namespace) -> int:
    from automnist.predict import export_model

    path = export_model(args.run, args.out, results_dir=args.results)
    print(f"wrote {path}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from automnist.predict import predict_images

    _quiet_tensorflow()
    frame = predict_images(args.model, args.images, top=args.top, results_dir=args.results, invert=args.invert)
    for image, rows in frame.groupby("image", sort=False):
        print(image)
        for row in rows.itertuples(index=False):
            print(f"  {row.rank}. {row.class_name:<12} {row.probability:7.2%}")
    return 0


_HANDLERS = {
    "search": _cmd_search,
    "cv": _cmd_cv,
    "runs": _cmd_runs,
    "export": _cmd_export,
    "report": _cmd_report,
    "validate": _cmd_validate,
    "datasets": _cmd_datasets,
    "demo": _cmd_demo,
    "lr-find": _cmd_lr_find,
    "compare-denoising": _cmd_compare_denoising,
    "export-model": _cmd_export_model,
    "predict": _cmd_predict,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
