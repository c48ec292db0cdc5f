"""Two real runs shared by the newcomer-polish tests (issue 13): ``first`` made by the
``automnist`` command in a subprocess (its stderr kept, ``--tensorboard``), ``second``
in-process with a live report (rewritten after the first trial, then not for an hour) and
a listener that reads it as each trial ends.  Each run: a grid of 2 tiny CNNs on 300 digits for 2 epochs, one of them
infeasible (a 9x9 'valid' convolution on 8x8 images)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TINY_SPEC = """\
name: tiny
model: cnn
data: {dataset: digits, subset: 300, validation_split: 0.2, test_split: 0.2}
params:
  conv_layers: 1
  filters: 8
  kernel_size: {choice: [3, 9]}
  padding: valid
  activation: leaky_relu
  units: 16
  batch_size: 32
  learning_rate: 0.003
search: {strategy: grid, max_trials: 2, epochs: 2, seed: 0}
objective: val_accuracy
"""


@dataclass
class PolishRuns:
    results: Path
    tensorboard: Path
    spec: Path
    stderr: str
    stdout: str
    returncode: int
    live_pages: list[str] = field(default_factory=list)  # report.html as each trial of `second` ended
    index_after_first: str = ""  # results/index.html as the command left it after `first`


class _ReadReport:
    """A listener after the live report: keeps report.html's text as each trial ends, and
    after the first one makes the live report wait an hour (one live page is enough here;
    each costs seconds of plotting)."""

    def __init__(self, results: Path, pages: list[str], live: object) -> None:
        self.results, self.pages, self.live = results, pages, live

    def trial_ended(self, ctx, record) -> None:
        self.pages.append((self.results / ctx.run / "report.html").read_text(encoding="utf-8"))
        self.live.every_s = 3600.0

    def run_ended(self, store, run) -> None:
        pass


@pytest.fixture(scope="session")
def polish_runs(tmp_path_factory: pytest.TempPathFactory) -> PolishRuns:
    from automnist.cli.outputs import refresh_index
    from automnist.report.live import LiveReport
    from automnist.search import run_search
    from automnist.spec import load_spec

    root = tmp_path_factory.mktemp("polish")
    results, tb = root / "results", root / "tb"
    spec = root / "tiny.yaml"
    spec.write_text(TINY_SPEC, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "ABSL_", "KERASTUNER_"))}  # as a user's shell
    proc = subprocess.run(
        [sys.executable, "-m", "automnist", "search", str(spec), "--run-name", "first", "--results", str(results),
         "--tensorboard", str(tb), "--quiet"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    runs = PolishRuns(results, tb, spec, proc.stderr, proc.stdout, proc.returncode)
    index = results / "index.html"
    runs.index_after_first = index.read_text(encoding="utf-8") if index.is_file() else ""
    live = LiveReport(results, every_s=0)
    run_search(load_spec(spec), results_dir=results, run_name="second", progress=False,
               listeners=[live, _ReadReport(results, runs.live_pages, live)])
    refresh_index(results)  # as the command does when a run ends
    return runs
