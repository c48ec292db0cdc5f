"""The ``automnist`` command line: its subcommands and options (argparse only, so
``automnist --help`` answers at once)."""

from __future__ import annotations

import argparse
import os

from automnist.predict import INVERT_CHOICES
from automnist.spec import STRATEGIES

__all__ = ["DEFAULT_RESULTS", "add_store_option", "build_parser"]

DEFAULT_RESULTS = os.environ.get("AUTOMNIST_RESULTS", "results")


def _add_results(p: argparse.ArgumentParser) -> None:
    """--results and --store of every command that reads or writes the store."""
    p.add_argument("--results", default=DEFAULT_RESULTS, metavar="DIR",
                   help="output root holding automnist.db and one folder per run (default: %(default)s)")
    add_store_option(p)


def add_store_option(p: argparse.ArgumentParser) -> None:
    """--store URL: the results store (a path, sqlite:///path or postgresql://user@host:port/db)."""
    p.add_argument("--store", default=os.environ.get("AUTOMNIST_STORE") or None, metavar="URL",
                   help="the results store: a file path, sqlite:///path or postgresql://user@host:port/db, shared "
                        "by several processes or machines (default: <results>/automnist.db; also: AUTOMNIST_STORE)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """--dataset, --subset, --seed and --data-dir of every command that trains."""
    p.add_argument("--dataset", metavar="NAME", help="override data.dataset (see `automnist datasets`)")
    p.add_argument("--subset", type=int, metavar="N", help="use a stratified subset of N training images")
    p.add_argument("--seed", type=int, metavar="S", help="override search.seed")
    p.add_argument("--data-dir", metavar="DIR", help="look for data set files here first (also: AUTOMNIST_DATA)")


def _add_search_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", choices=STRATEGIES, help="override search.strategy")
    p.add_argument("--max-trials", type=int, metavar="N", help="override search.max_trials")
    p.add_argument("--epochs", type=int, metavar="N", help="override search.epochs")
    _add_data_options(p)
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="the whole search's time budget (strategy auto plans it, keeping a reserve for the final "
                        "model; other strategies stop at it)")
    p.add_argument("--cv", type=int, metavar="K", help="k-fold cross-validation inside every trial")
    p.add_argument("--n-jobs", type=int, metavar="N", help="parallel jobs for scikit-learn strategies")


def _add_distributed(p: argparse.ArgumentParser) -> None:
    """What the chief and its workers share: the spec's overrides, the run and the store."""
    _add_search_overrides(p)
    p.add_argument("--run-name", required=True, metavar="NAME", help="the run's name (the same on the chief and workers)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_results(p)


def _add_live_outputs(p: argparse.ArgumentParser) -> None:
    """What a search writes while it runs: the live report and TensorBoard logs."""
    p.add_argument("--report-every", type=float, default=60.0, metavar="SECONDS",
                   help="rewrite results/<run>/report.html during the search at most this often, marked as in "
                        "progress (default: %(default)g)")
    p.add_argument("--tensorboard", metavar="DIR", help="write each trial's per-epoch metrics and hyperparameters "
                   "for TensorBoard's HParams dashboard to DIR/<run>/")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="automnist",
        description="AutoML searches for Keras image classifiers: declarative YAML search spaces, "
        "Keras Tuner and scikit-learn strategies, a results store and HTML comparison reports.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--verbose", action="store_true", help="keep TensorFlow's and Keras' log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("search", help="run the search a spec describes")
    p.add_argument("spec", help="search-space YAML file")
    _add_search_overrides(p)
    p.add_argument("--run-name", metavar="NAME", help="name of the run in the store (default: <spec>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue --run-name without repeating finished trials")
    p.add_argument("--no-report", action="store_true", help="do not write results/<run>/report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_live_outputs(p)
    p.add_argument("--workers", type=int, metavar="N",
                   help="run N worker processes with Keras Tuner's chief/worker mode (random, bayesian, hyperband, "
                        "grid) or sharing one optuna study (auto), each with its share of the cores")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run scikit-learn strategies' candidates on a Dask cluster (scheduler address, or 'local')")
    _add_results(p)

    p = sub.add_parser("chief", help="serve a distributed search's oracle to `automnist worker` processes")
    p.add_argument("spec", help="search-space YAML file")
    p.add_argument("--bind", required=True, metavar="HOST:PORT", help="address the workers reach the chief at")
    _add_distributed(p)
    p.add_argument("--resume", action="store_true", help="continue --run-name: trials a dead worker lost run again")
    p.add_argument("--no-report", action="store_true", help="do not write results/<run>/report.html")

    p = sub.add_parser("worker", help="train the trials a chief (`automnist chief`) hands out")
    p.add_argument("spec", help="search-space YAML file (the chief's, with the same options)")
    p.add_argument("--chief", required=True, metavar="HOST:PORT", help="the chief's --bind address")
    p.add_argument("--tuner-id", metavar="ID", help="this worker's id (default: tuner-<host>-<pid>)")
    p.add_argument("--threads", type=int, metavar="N", help="TensorFlow threads (default: all cores)")
    _add_distributed(p)

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
    p.add_argument("--to", choices=("mlflow",), help="log the run to MLflow instead: one MLflow run per trial "
                   "under an experiment named after the run (needs mlflow or mlflow-skinny)")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else a file store in <results>/mlruns)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    _add_results(p)

    p = sub.add_parser("report", help="write the HTML comparison report of one or more runs")
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--all", action="store_true", help="every run's report, and the runs index results/index.html")
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
    p.add_argument("--invert", choices=INVERT_CHOICES, default="auto",
                   help="invert dark-on-light drawings (auto: grayscale images with a bright border)")
    _add_results(p)

    p = sub.add_parser("demo", help="a small search on digits, with an HTML report (a few minutes on 2 cores)")
    p.add_argument("--run-name", default="demo", metavar="NAME")
    p.add_argument("--max-trials", type=int, metavar="N")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--quiet", action="store_true")
    _add_live_outputs(p)
    _add_results(p)

    for command in sub.choices.values():  # `automnist search x.yaml --verbose` too
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="keep TensorFlow's and Keras' log lines (quiet by default)")
    return parser
