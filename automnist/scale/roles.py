"""One process's part in a distributed Keras Tuner search: the chief (serves the oracle)
or a worker (asks the chief for trials, trains them, writes them to the shared store).

The part is told through Keras Tuner's own variables, so a worker started by hand with
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` works too:
the chief's ``KERASTUNER_TUNER_ID`` contains ``chief``, each worker has its own id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from automnist.errors import SpecError, StoreError
from automnist.records import TrialRecord, best_trial
from automnist.store import Store

__all__ = ["CHIEF", "WORKER", "Role", "current_role", "enter_role", "parse_address", "limit_threads",
           "serve_oracle", "join_run", "stored_best"]

CHIEF, WORKER = "chief", "worker"
_ID, _IP, _PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"


@dataclass(frozen=True)
class Role:
    """This process's part: ``kind`` is :data:`CHIEF` or :data:`WORKER`."""

    kind: str
    tuner_id: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``.

    Raises
    ------
    SpecError
        Naming ``option`` when ``text`` is not ``HOST:PORT`` with a port in 0..65535.
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SpecError("", option, f"must be HOST:PORT with a port in 0..65535, got {text!r}")
    return host.strip("[]"), int(port)


def enter_role(kind: str, address: str, tuner_id: str | None = None) -> Role:
    """Set Keras Tuner's variables for this process (before any tuner is made)."""
    option = "--bind" if kind == CHIEF else "--chief"
    host, port = parse_address(address, option)
    if kind == WORKER and port == 0:
        raise SpecError("", option, "a worker needs the chief's port, got 0")
    tuner_id = "chief" if kind == CHIEF else (tuner_id or f"tuner-{os.uname().nodename}-{os.getpid()}")
    if kind == WORKER and "chief" in tuner_id:
        raise SpecError("", "--tuner-id", f"a worker's id must not contain 'chief', got {tuner_id!r}")
    os.environ.update({_ID: tuner_id, _IP: host, _PORT: str(port)})
    return Role(kind, tuner_id, host, port)


def current_role() -> Role | None:
    """The part Keras Tuner's variables give this process (None: a search on its own)."""
    if _IP not in os.environ:
        return None
    if _PORT not in os.environ or _ID not in os.environ:
        raise SpecError("", _IP, f"is set, so {_PORT} and {_ID} must be set too")
    tuner_id = os.environ[_ID]
    kind = CHIEF if "chief" in tuner_id else WORKER
    return Role(kind, tuner_id, os.environ[_IP], int(os.environ[_PORT]))


def limit_threads(n: int) -> None:
    """Give TensorFlow (and OpenMP/BLAS) ``n`` threads in this process: ``n`` intra-op, at
    most 2 inter-op.  Called before TensorFlow runs its first operation."""
    n = max(1, int(n))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(2, n))
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, n))
    except RuntimeError:  # TensorFlow already ran an operation: the variables above stand
        pass


def serve_oracle(oracle: Any, role: Role, *, poll: float = 0.2) -> None:
    """Serve ``oracle`` to the workers over gRPC until it has stopped and every worker that
    asked for trials has been told to stop.

    Keras Tuner's ``oracle_chief.start_server`` does the same but checks every 20 s; this
    loop checks every ``poll`` seconds, and reports a port it cannot listen on.

    Raises
    ------
    SpecError
        If ``role.address`` cannot be listened on.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(role.address)
    except RuntimeError:
        port = 0
    if not port:
        raise SpecError("", "--bind", f"cannot listen on {role.address} (address in use or not this machine's)")
    server.start()
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=None)


def join_run(store: Store, name: str, spec_hash: str, *, timeout: float = 600.0) -> dict[str, TrialRecord]:
    """Wait until the chief has started (or resumed) run ``name``; its trials so far.

    Raises
    ------
    StoreError
        If the run is not running after ``timeout`` seconds, or was made from another spec.
    """
    end = time.time() + timeout
    while True:
        run = store.get_run(name)
        if run is not None and run["spec_hash"] != spec_hash:
            raise StoreError(f"cannot join run {name!r}: the chief runs another spec or options "
                             f"(hash {run['spec_hash']}, this worker {spec_hash}); start the worker with the same ones")
        if run is not None and run["status"] == "running":
            return {t.trial_id: t for t in store.get_trials(name)}
        if time.time() >= end:
            state = "does not exist" if run is None else f"is {run['status']}"
            raise StoreError(f"cannot join run {name!r}: it {state} after {timeout:.0f} s; start the chief first")
        time.sleep(0.5)


def stored_best(store: Store, run: str, objective: str, direction: str,
                also: Iterable[TrialRecord] = ()) -> tuple[list[TrialRecord], TrialRecord | None]:
    """Run ``run``'s stored trials and the best of them and ``also`` (the one ranking rule)."""
    trials = store.get_trials(run)
    return trials, best_trial([*trials, *also], objective, direction)
