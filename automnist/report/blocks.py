"""The building blocks of the report's sections: tables of (text, sort key) cells,
figures inlined as base64 PNG data URIs, key-value lists, text; and their formatting."""

from __future__ import annotations

import base64
import datetime as _dt
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Block", "Section", "cell", "figure_block", "format_duration", "format_time", "gallery_block",
           "is_missing", "kv_block", "png_uri", "slug", "table_block", "text_block"]

#: Resolution of the inlined figures.
PNG_DPI = 80


@dataclass
class Block:
    """One piece of a section, drawn by the template macro of its ``kind``."""

    kind: str  # table | figure | gallery | kv | pre | text
    title: str = ""
    data: Any = None
    note: str = ""


@dataclass
class Section:
    """A titled part of the report (``level`` 2 or 3) made of blocks."""

    id: str
    title: str
    level: int = 2
    blocks: list[Block] = field(default_factory=list)


def is_missing(value: Any) -> bool:
    """Whether ``value`` is None, NA, NaT or NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def cell(value: Any) -> tuple[str, str | None]:
    """Display text and numeric sort key (None: sort as text; "": missing, always last)."""
    if is_missing(value):
        return "–", ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)), None
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value)), str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return ("∞" if v > 0 else "-∞"), ("1e308" if v > 0 else "-1e308")
        text = f"{v:,.0f}" if abs(v) >= 10000 else f"{v:.4g}"
        return text, repr(v)
    return str(value), None


def table_block(frame: pd.DataFrame, title: str = "", note: str = "", index: bool = False) -> Block:
    """A sortable table block: header texts and rows of (text, sort key) cells."""
    if index:
        frame = frame.reset_index()
    columns = [str(c) for c in frame.columns]
    rows = [[cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return Block("table", title, {"columns": columns, "rows": rows}, note)


def png_uri(fig: Figure) -> str:
    """Encode a figure as a base64 PNG data URI and free it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI)
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_block(fig: Figure, title: str, alt: str, note: str = "") -> Block:
    """One inlined figure."""
    return Block("figure", title, {"src": png_uri(fig), "alt": alt}, note)


def gallery_block(figures: Iterable[tuple[Figure, str]], note: str = "") -> Block:
    """Inlined figures side by side, each given with its alt text."""
    return Block("gallery", "", [{"src": png_uri(fig), "alt": alt, "title": ""} for fig, alt in figures], note)


def text_block(text: str) -> Block:
    """A paragraph of text."""
    return Block("text", "", text)


def kv_block(items: Sequence[tuple[str, Any]], title: str = "") -> Block:
    """A key-value list; values that are not strings are shown like table cells."""
    return Block("kv", title, [(k, cell(v)[0] if not isinstance(v, str) else v) for k, v in items])


def format_time(ts: Any) -> str:
    """A Unix timestamp as UTC date and time ("–" when missing)."""
    if is_missing(ts) or not ts:
        return "–"
    return _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: Any) -> str:
    """Seconds as "12.3 s", "4 min 05 s" or "1 h 02 min 03 s" ("–" when missing)."""
    if is_missing(seconds):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"


def slug(*parts: Any) -> str:
    """An HTML id made of ``parts`` (lower case, non-alphanumerics as dashes)."""
    text = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-") or "section"
