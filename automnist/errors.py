"""The short family of exceptions automnist raises.

Like keras-tuner's ``errors`` module, the exception type decides what happens to a
search: a :class:`SpecError` or :class:`DataError` stops before any training, an
:class:`InfeasibleConfig` marks one trial ``infeasible`` and the search goes on, any
other exception inside a trial marks it ``failed`` and the search goes on.
"""

from __future__ import annotations


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (line breaks and control characters escaped), at most ``limit`` characters."""
    flat = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class AutomnistError(Exception):
    """Base class of every error automnist raises on purpose."""


class SpecError(AutomnistError, ValueError):
    """A search-space spec is invalid.

    The message reads ``<source>: <key path>: <rule>, got <value>``.
    """

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.rule = message
        where = f"{source}: " if source else ""
        key = f"{path}: " if path else ""
        super().__init__(one_line(f"{where}{key}{message}"))


class DataError(AutomnistError):
    """A data set is missing, corrupt or in the wrong format."""


class InfeasibleConfig(AutomnistError):
    """A hyperparameter configuration cannot be built for this input shape."""


class StoreError(AutomnistError):
    """The results store cannot do what was asked (unknown run, name taken, ...)."""


class Diverged(AutomnistError):
    """Training diverged (a loss became NaN or infinite): the trial is ``failed``."""
