"""scikit-learn strategies on a Dask cluster: inside :func:`dask_backend`, joblib (which
``GridSearchCV``, ``RandomizedSearchCV`` and the halving searches use for their candidates
and folds) hands its tasks to Dask's ``distributed`` scheduler.

``address`` is a scheduler's address (``tcp://host:8786``, started with
``dask scheduler`` and ``dask worker tcp://host:8786 --nthreads 1`` on each machine) or
``local`` for a :class:`distributed.LocalCluster` of one single-threaded worker process per
core on this machine.  The candidates' scores do not depend on where they ran: each fit is
seeded by the spec's seed, so the stored scores equal a serial run's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from automnist.errors import SpecError

__all__ = ["dask_backend", "DASK_STRATEGIES"]

#: Strategies whose candidates run through joblib.
DASK_STRATEGIES = ("sklearn-grid", "sklearn-random", "sklearn-halving")


@contextmanager
def dask_backend(address: str, strategy: str, *, cluster: Any = None) -> Iterator[Any]:
    """Run joblib's work on the Dask cluster at ``address`` (or ``local``) inside the block.

    Parameters
    ----------
    address : str
        Scheduler address, or ``local`` to start a ``LocalCluster`` for the block.
    strategy : str
        The search's strategy; only scikit-learn strategies run through joblib.
    cluster : distributed.LocalCluster, optional
        With ``address="local"``, use this cluster instead of starting one (tests).

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
            client = stack.enter_context(Client(target, timeout="10s"))
        except (OSError, TimeoutError) as exc:
            raise SpecError("", "--dask", f"cannot reach a Dask scheduler at {address!r}: {exc}") from exc
        stack.enter_context(parallel_backend("dask"))
        yield client
