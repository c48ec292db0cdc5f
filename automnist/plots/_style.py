"""The shared look of every figure: rc style, pyplot-free figures, empty-axes messages.

Figures are built with :class:`matplotlib.figure.Figure` directly, not through
``pyplot``: nothing is registered in pyplot's global figure list, nothing has to be
closed, and no GUI backend is ever touched (matplotlib is switched to Agg if pyplot
has not been imported yet).  matplotlib and seaborn are imported inside the
functions so ``import automnist`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: One look for every figure (applied with ``matplotlib.rc_context``, never globally).
RC: dict[str, Any] = {
    "figure.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}

F = TypeVar("F", bound=Callable[..., Any])


def styled(func: F) -> F:
    """Draw inside the shared rc context (Agg backend, common style)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        with matplotlib.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(width: float = 6.4, height: float = 4.0, **subplots: Any) -> tuple[Figure, Any]:
    """A pyplot-free figure and its axes (``Figure.subplots`` arguments)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(**subplots) if subplots else fig.subplots()
    return fig, axes


def empty(ax: Axes, message: str) -> None:
    """Hide the axes and say why there is nothing to draw."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


def palette(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinct colours (tab10 up to 10, husl beyond)."""
    import seaborn as sns

    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def boxplot(**kwargs: Any) -> None:
    """``seaborn.boxplot`` without seaborn 0.13's matplotlib >= 3.11 deprecation noise (``vert``)."""
    import warnings

    import seaborn as sns

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="vert: bool was deprecated")
        sns.boxplot(**kwargs)
