"""One self-contained HTML report per run (or per comparison of runs), plus text exports.

The report is a pipeline of three stages, like ydata-profiling:

1. **describe** (:mod:`automnist.report.describe`): read the store's frames and the
   run's ``predictions.npz``, compute the :mod:`automnist.aggregate` tables;
2. **structure** (:mod:`automnist.report.sections`, :mod:`~automnist.report.experiment_sections`):
   turn them into sections made of blocks (:mod:`automnist.report.blocks`: tables,
   figures, key-value lists, preformatted text); figures are drawn by
   :mod:`automnist.plots` and inlined as base64 PNG data URIs;
3. **render** (:mod:`automnist.report.render`): the Jinja2 template
   ``templates/report.html.j2`` with autoescaping on.  CSS and the table sorter are
   inline; a Content-Security-Policy allows no external request and only the sorter
   script (by its SHA-256 hash).

:mod:`automnist.report.export` writes a run's tables as Markdown, CSV or JSON.
"""

from automnist.report.export import export_markdown, export_table
from automnist.report.render import write_report

__all__ = ["export_markdown", "export_table", "write_report"]
