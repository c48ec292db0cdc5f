"""Scale a search out: Keras Tuner's chief/worker processes (:mod:`~automnist.scale.roles`
in each process, :mod:`~automnist.scale.pool` in the parent of ``--workers N``) and
scikit-learn searches on a Dask cluster (:mod:`~automnist.scale.dask`).

Nothing here imports TensorFlow, Keras Tuner or Dask at import time.
"""

from automnist.scale.roles import CHIEF, WORKER, Role, current_role, limit_threads, parse_address

__all__ = ["CHIEF", "WORKER", "Role", "current_role", "limit_threads", "parse_address"]
