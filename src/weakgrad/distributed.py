"""Several processes, one computation: JAX's multi-process runtime for weakgrad's commands.

Every process runs the same program. After :func:`initialize`, ``jax.devices()`` lists the
devices of all processes, so :func:`weakgrad.parallel.mesh` (one axis) spans them and every
population, sweep chunk and training step that weakgrad shards (see
:mod:`weakgrad.parallel`) is split over all processes' devices; collectives run through
gloo on CPU and NCCL on GPU. Results are global arrays that every process holds (reduced
estimates are replicated; :func:`weakgrad.parallel.to_host` gathers sharded ones), so all
processes agree on every number. Only process 0 writes files and prints
(:func:`is_main`, :func:`echo`).

When to start the runtime (:func:`cluster_settings`):

- explicitly: ``--coordinator HOST:PORT --num-processes N --process-id I`` (the names of
  :func:`jax.distributed.initialize`);
- ``JAX_COORDINATOR_ADDRESS`` set (with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, which
  weakgrad reads, or a cluster that JAX detects);
- a cluster environment with more than one task: SLURM (``srun``; ``SLURM_NTASKS`` > 1),
  Open MPI (``mpirun``; ``OMPI_COMM_WORLD_SIZE`` > 1), or a Kubernetes indexed Job
  (``JOB_COMPLETION_INDEX``); JAX then reads the coordinator, process count and id itself.

Otherwise nothing happens: a plain run is one process, as before.

Failures: when one process raises, :func:`session` publishes the error in the coordination
service's key-value store; a watcher thread in every other process reads it, prints
``weakgrad: process I of N failed: ...`` and exits (status 1) at once, instead of waiting in
a collective for a peer that is gone. A process killed outright (no Python left to report)
is detected by JAX's heartbeat (``heartbeat_timeout_seconds``, 100 s by default), after
which JAX stops every process: with JAX's multi-process runtime, one dead process stops them
all; nothing is resumed automatically (``weakgrad train --resume`` continues from the last
checkpoint).

Reference: JAX documentation, "Introduction to multi-controller JAX" and
:func:`jax.distributed.initialize`.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping

from weakgrad.errors import ConfigError

__all__ = [
    "ClusterSettings",
    "cluster_settings",
    "initialize",
    "is_main",
    "process_count",
    "process_index",
    "echo",
    "session",
]

_FAILED = "weakgrad/failed"  # the coordination-service key a failing process writes
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """How to start JAX's multi-process runtime, or that there is nothing to start.

    Attributes:
        coordinator: ``HOST:PORT`` of process 0's coordination service (None: JAX reads it
            from the cluster environment).
        num_processes: processes in the run (None: from the environment).
        process_id: this process's index, ``0 <= process_id < num_processes``.
        detected: the cluster environment the settings came from (``"flags"``,
            ``"JAX_COORDINATOR_ADDRESS"``, ``"slurm"``, ``"openmpi"``, ``"kubernetes"``), or
            None for a plain single-process run.

    Bad values raise :class:`~weakgrad.errors.ConfigError` naming the command-line option.
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    detected: str | None = None

    def __post_init__(self):
        if self.coordinator is not None:
            host, sep, port = self.coordinator.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(
                    f"--coordinator must be HOST:PORT (e.g. 127.0.0.1:12355), got "
                    f"{self.coordinator!r}."
                )
        n, i = self.num_processes, self.process_id
        if n is not None and n < 1:
            raise ConfigError(f"--num-processes must be >= 1, got {n}.")
        if i is not None and i < 0:
            raise ConfigError(f"--process-id must be >= 0, got {i}.")
        if n is not None and i is not None and i >= n:
            raise ConfigError(
                f"--process-id must be below --num-processes ({n}), got {i}: processes are "
                f"numbered 0 to {n - 1}."
            )

    @property
    def active(self) -> bool:
        """Whether the multi-process runtime is to be started."""
        return self.detected is not None


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}.") from None


def cluster_settings(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ClusterSettings:
    """The runtime's settings from the three flags, else from the environment ``env``
    (default ``os.environ``). Flags: all three together, or none (``--num-processes 1``
    alone is a plain run). Without flags, the runtime starts only where
    ``JAX_COORDINATOR_ADDRESS`` is set or a cluster with more than one task is detected
    (SLURM, Open MPI, a Kubernetes indexed Job); a one-task job is a plain run."""
    env = os.environ if env is None else env
    flags = {"--coordinator": coordinator, "--num-processes": num_processes,
             "--process-id": process_id}  # fmt: skip
    given = [k for k, v in flags.items() if v is not None]
    if given:
        if num_processes == 1 and coordinator is None and process_id in (None, 0):
            return ClusterSettings()
        missing = [k for k in flags if k not in given]
        if missing:
            raise ConfigError(
                f"{', '.join(given)} given without {', '.join(missing)}: a multi-process run "
                "needs all three (--coordinator HOST:PORT --num-processes N --process-id I), "
                "or none of them under SLURM, Open MPI or with JAX_COORDINATOR_ADDRESS set."
            )
        return ClusterSettings(coordinator, num_processes, process_id, "flags")
    if env.get("JAX_COORDINATOR_ADDRESS"):
        n, i = _env_int(env, "JAX_NUM_PROCESSES"), _env_int(env, "JAX_PROCESS_ID")
        return ClusterSettings(env["JAX_COORDINATOR_ADDRESS"], n, i, "JAX_COORDINATOR_ADDRESS")
    # What JAX's own SLURM detection reads.
    slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
             "SLURM_LOCALID")  # fmt: skip
    if all(k in env for k in slurm) and (_env_int(env, "SLURM_NTASKS") or 1) > 1:
        return ClusterSettings(detected="slurm")
    if "OMPI_MCA_orte_hnp_uri" in env and (_env_int(env, "OMPI_COMM_WORLD_SIZE") or 1) > 1:
        return ClusterSettings(detected="openmpi")
    if "KUBERNETES_SERVICE_HOST" in env and "JOB_COMPLETION_INDEX" in env:
        return ClusterSettings(detected="kubernetes")
    return ClusterSettings()


def initialize(settings: ClusterSettings, *, heartbeat_timeout_s: int = 100) -> bool:
    """Start JAX's multi-process runtime as ``settings`` say (before anything else touches
    JAX's devices); returns whether it was started. A loopback coordinator
    (``127.0.0.1:PORT``) is also bound to the loopback interface only (JAX binds all
    interfaces by default). Starting it twice in one process is a no-op."""
    if not settings.active:
        return False
    import jax

    if jax.distributed.is_initialized():
        return True
    bind = None
    if settings.coordinator is not None:
        host = settings.coordinator.rpartition(":")[0]
        bind = settings.coordinator if host in _LOOPBACK else None
    jax.distributed.initialize(
        coordinator_address=settings.coordinator,
        num_processes=settings.num_processes,
        process_id=settings.process_id,
        coordinator_bind_address=bind,
        heartbeat_timeout_seconds=heartbeat_timeout_s,
    )
    return True


def process_count() -> int:
    """Processes in the run (1 without the multi-process runtime)."""
    import jax

    return jax.process_count()


def process_index() -> int:
    """This process's index (0 without the multi-process runtime)."""
    import jax

    return jax.process_index()


def is_main() -> bool:
    """Whether this is process 0, the one that writes files and prints."""
    return process_index() == 0


def echo(message: str, *, err: bool = False) -> None:
    """Print ``message`` on process 0 only (all processes hold the same results)."""
    if is_main():
        print(message, file=sys.stderr if err else sys.stdout, flush=True)


def _exit_now(status: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _client():
    """The coordination-service client of JAX's runtime (its key-value store); JAX has no
    public name for it."""
    from jax._src import distributed as _jd

    return _jd.global_state.client


def _watch(stop: threading.Event, me: int, n: int) -> None:
    """Poll the key a failing process writes; on finding it, say who failed and exit."""
    client = _client()
    while not stop.is_set():
        try:
            message = client.blocking_key_value_get(_FAILED, 500)
        except Exception:  # not set yet (a timeout), or the service is shutting down
            continue
        if stop.is_set():
            return
        sys.stdout.flush()
        print(f"weakgrad: stopping process {me} of {n}: {message}", file=sys.stderr, flush=True)
        os._exit(1)


@contextlib.contextmanager
def session(settings: ClusterSettings) -> Iterator[bool]:
    """Start the runtime as ``settings`` say and yield whether this is process 0. In a
    multi-process run, an exception in any process reaches every other one: they print
    which process failed and why, and exit with status 1; the failing process re-raises."""
    if not initialize(settings):
        yield True
        return
    import jax

    me, n = jax.process_index(), jax.process_count()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(stop, me, n), daemon=True)
    watcher.start()
    try:
        yield me == 0
    except SystemExit as e:
        if e.code not in (0, None):
            _fail(e, me, n, stop, e.code if isinstance(e.code, int) else 1)
        raise
    except BaseException as e:
        _fail(e, me, n, stop, 2 if isinstance(e, ConfigError) else 1)
        raise
    finally:
        stop.set()
        watcher.join()


def _fail(e: BaseException, me: int, n: int, stop: threading.Event, status: int) -> None:
    """Tell the other processes that this one failed, and leave, with ``status``, without
    JAX's shutdown."""
    stop.set()
    what = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()
    message = f"process {me} of {n} failed: {what[-1] if what else type(e).__name__}"
    with contextlib.suppress(Exception):
        _client().key_value_set(_FAILED, message)
    print(f"weakgrad: {message}", file=sys.stderr, flush=True)
    # Registered after JAX's own exit handler, so run before it: leave without JAX's
    # shutdown barrier, which would wait out the heartbeat timeout for the peers that have
    # just stopped. The caller still reports the error first.
    atexit.register(_exit_now, status)
