"""Stage 3 of the report, render: the Jinja2 template ``templates/report.html.j2`` -> one
self-contained HTML file; and :func:`write_report`, the describe -> structure -> render pipeline.

Autoescaping is on, so every run name, spec value, class name and error text is escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automnist import __version__
from automnist.report.blocks import Section
from automnist.report.describe import Description, describe
from automnist.report.sections import structure
from automnist.runs import run_dir, write_text_whole

if TYPE_CHECKING:
    from automnist.store import Store

__all__ = ["content_policy", "render", "write_report"]


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("automnist.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def content_policy(script: str) -> str:
    """The Content-Security-Policy of a page: no external request, only ``script`` (by its SHA-256)."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


def render(desc: Description, sections: list[Section], refresh_s: float | None = None) -> str:
    """Stage 3: the HTML page of ``sections`` (autoescaped; CSS and sorter script inline).

    A Content-Security-Policy allows no external request and only the sorter script,
    by its SHA-256 hash.  ``refresh_s`` marks a search still in progress: a banner says
    so and the page reloads itself every ``refresh_s`` seconds.
    """
    from markupsafe import Markup

    env = _environment()
    script = env.get_template("_sorter.js.j2").render()
    csp = content_policy(script)
    names = [v.name for v in desc.runs]
    title = f"automnist report: {names[0]}" if len(names) == 1 else "automnist comparison: " + " vs ".join(names)
    generated = _dt.datetime.now(tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return env.get_template("report.html.j2").render(
        title=title, runs=names, sections=sections, generated=generated, version=__version__,
        script=Markup(script), csp=csp,  # the script is our own package file, not user data
        refresh=None if refresh_s is None else max(1, int(round(refresh_s))),
    )


def _safe_name(run: str) -> str:
    return run_dir(".", run).name


def _results_dir_of(store: Store) -> Path:
    path = getattr(store, "path", None)
    return Path(path).parent if path is not None else Path("results")


def write_report(
    store: Store, runs: Sequence[str] | str, out: Path | None = None, results_dir: Path | None = None,
    refresh_s: float | None = None,
) -> Path:
    """Write one self-contained HTML report of one or several runs.

    Parameters
    ----------
    store : Store
        The results store holding the runs.
    runs : list of str
        Run names; one gives a run report, several a side-by-side comparison followed
        by each run's report.
    out : Path, optional
        Output file.  Default: ``<results_dir>/<run>/report.html`` for one run,
        ``<results_dir>/compare-<a>-vs-<b>.html`` for several (names made safe for paths).
    results_dir : Path, optional
        Where runs keep ``<run>/predictions.npz``; default: the store's directory.
    refresh_s : float, optional
        A live report of a search in progress, reloading itself every ``refresh_s`` s.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    StoreError
        If a run is not in the store.
    ValueError
        If ``runs`` is empty or names a run twice.
    """
    names = [runs] if isinstance(runs, str) else list(runs)
    if not names:
        raise ValueError("runs: need at least one run name, got []")
    if len(set(names)) != len(names):
        raise ValueError(f"runs: each run may appear once, got {names!r}")
    results_dir = Path(results_dir) if results_dir is not None else _results_dir_of(store)
    desc = describe(store, names, results_dir)
    html = render(desc, structure(desc), refresh_s)
    if out is None:
        if len(names) == 1:
            out = results_dir / _safe_name(names[0]) / "report.html"
        else:
            stem = "compare-" + "-vs-".join(_safe_name(n) for n in names)
            out = results_dir / f"{stem[:180]}.html"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(out, html)  # a browser reloading a live report never reads half a file
    return out
