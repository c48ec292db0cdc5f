"""scikit-learn strategies on a Dask cluster: inside :func:`dask_backend`, joblib (which
``GridSearchCV``, ``RandomizedSearchCV`` and the halving searches use for their candidates
and folds) hands its tasks to Dask's ``distributed`` scheduler.

``address`` is a scheduler's address (``tcp://host:8786``, started with
``dask scheduler`` and ``dask worker tcp://host:8786 --nthreads 1`` on each machine) or
``local`` for a :class:`distributed.LocalCluster` of one single-threaded worker process per
core on this machine.  The candidates' scores do not depend on where they ran: each fit is
seeded by the spec's seed, so the stored scores equal a serial run's.  That needs one care:
Keras draws the default seeds of its layers from Python's global ``random`` generator, and
Dask's worker threads draw from it too (retry jitter, sampling sizes of results), so a fit
on a Dask worker would see other numbers.  :class:`PrivateRandom`, registered on every
worker, gives Dask's and Tornado's modules their own generator.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from automnist.errors import SpecError

__all__ = ["dask_backend", "DASK_STRATEGIES", "PrivateRandom"]

#: Strategies whose candidates run through joblib.
DASK_STRATEGIES = ("sklearn-grid", "sklearn-random", "sklearn-halving")


#: Modules of Dask's worker that call Python's global ``random`` functions.
_RANDOM_USERS = ("distributed.worker", "distributed.comm.core", "distributed.utils_comm", "dask.sizeof",
                 "tornado.ioloop")


class PrivateRandom:
    """A Dask worker plugin: Dask's own random draws come from a private generator, leaving
    Python's global one to the seeded fits (see the module docstring)."""

    name = "automnist-private-random"

    def setup(self, worker: Any = None) -> None:
        own = random.Random(0)
        for module in _RANDOM_USERS:
            mod = importlib.import_module(module)
            if getattr(mod, "random", None) is random:
                mod.random = own  # type: ignore[attr-defined]
        compression = importlib.import_module("distributed.protocol.compression")
        if getattr(compression, "randint", None) is random.randint:
            compression.randint = own.randint  # type: ignore[attr-defined]

    def teardown(self, worker: Any = None) -> None:
        """Nothing to undo: the worker process ends with the cluster."""


@contextmanager
def dask_backend(address: str, strategy: str, *, cluster: Any = None, timeout: float = 10.0) -> Iterator[Any]:
    """Run joblib's work on the Dask cluster at ``address`` (or ``local``) inside the block.

    Parameters
    ----------
    address : str
        Scheduler address, or ``local`` to start a ``LocalCluster`` for the block.
    strategy : str
        The search's strategy; only scikit-learn strategies run through joblib.
    cluster : distributed.LocalCluster, optional
        With ``address="local"``, use this cluster instead of starting one (tests).
    timeout : float
        Seconds to wait for the scheduler.

    Yields
    ------
    distributed.Client

    Raises
    ------
    SpecError
        If the strategy does not use joblib, or the scheduler cannot be reached.
    """
    if strategy not in DASK_STRATEGIES:
        raise SpecError("", "--dask", f"needs strategy {', '.join(DASK_STRATEGIES)}, got {strategy!r}")
    from distributed import Client, LocalCluster
    from joblib import parallel_backend

    with ExitStack() as stack:
        if address == "local":
            if cluster is None:
                cluster = stack.enter_context(LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1,
                                                           processes=True, dashboard_address=None))
            target: Any = cluster
        else:
            target = address
        try:
            client = stack.enter_context(Client(target, timeout=f"{timeout}s"))
        except (OSError, TimeoutError) as exc:
            raise SpecError("", "--dask", f"cannot reach a Dask scheduler at {address!r}: {exc}") from exc
        client.register_plugin(_worker_plugin())
        stack.enter_context(parallel_backend("dask"))
        yield client


def _worker_plugin() -> Any:
    from distributed import WorkerPlugin

    return type("PrivateRandomPlugin", (PrivateRandom, WorkerPlugin), {})()
