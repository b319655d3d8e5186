"""The one sharding helper: spread a leading (population or batch) axis over every JAX
device (all GPUs, or CPU cores exposed as devices), on one mesh with one axis name.

On CPU, XLA runs one device per thread: ``weakgrad`` commands expose one device per core
(``--xla_force_host_platform_device_count``) so that independent neurons, trials and
parameter samples use all cores. Library users opt in the same way, before JAX starts.

Several processes (:mod:`weakgrad.distributed`): ``jax.devices()`` then lists every
process's devices, so the same mesh spans all of them and every process runs the same
program on the same inputs (SPMD). A sharded result then lives partly on other processes:
read it with :func:`to_host`, which gathers it (``np.asarray`` refuses such arrays);
reduced results (an estimate's gradient, a loss) are replicated and read as they are.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["AXIS", "mesh", "pad_to_devices", "shard_leading", "shard_population", "to_host"]

AXIS = "pop"  # the mesh axis every sharded leading axis is split along


def mesh() -> Mesh:
    """A 1-D mesh over all devices of all processes, axis :data:`AXIS`."""
    return Mesh(np.asarray(jax.devices()), (AXIS,))


def _pad(tree: Any, target: int) -> tuple[Any, int]:
    """Pad every leaf's leading axis (repeating its last entry) to ``target`` rounded up to a
    multiple of the device count; returns the tree and the original length."""
    n = jax.tree_util.tree_leaves(tree)[0].shape[0]
    d = jax.device_count()
    target = max(n, target)
    extra = target - n + (-target) % d
    if extra:
        tree = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], extra, 0)]), tree)
    return tree, n


def pad_to_devices(x: Array, size: int | None = None) -> tuple[Array, int]:
    """Pad the leading axis (by repeating the last entry) to ``size`` (default: its length)
    rounded up to a multiple of the device count; returns the padded array and the
    original length. A fixed ``size`` keeps every chunk of a sweep one compiled shape."""
    return _pad(x, size or 0)


def shard_leading(x: Array) -> Array:
    """Place ``x`` with its leading axis split across all devices (a no-op on one). For
    concrete arrays, outside ``jit``. With several processes every process passes the same
    ``x`` and keeps its own devices' part."""
    if jax.device_count() == 1:
        return x
    return jax.device_put(x, NamedSharding(mesh(), PartitionSpec(AXIS)))


def shard_population(tree: Any) -> tuple[Any, int]:
    """Inside ``jit``: pad the leading (population) axis of every leaf to a multiple of the
    device count and constrain it to be split across devices. Returns the tree and the
    original size (slice results with ``[:n]``)."""
    n = jax.tree_util.tree_leaves(tree)[0].shape[0]
    if jax.device_count() == 1:
        return tree, n
    tree, n = _pad(tree, 0)
    sharding = NamedSharding(mesh(), PartitionSpec(AXIS))
    return jax.lax.with_sharding_constraint(tree, sharding), n


def to_host(x: Any) -> np.ndarray:
    """The whole value of ``x`` as a NumPy array on this process: ``np.asarray`` for an
    array held here (or replicated on every device); gathered from every process for one
    sharded across processes (a collective: every process must call it, in the same
    order)."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
