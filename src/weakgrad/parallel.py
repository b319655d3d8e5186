"""Spread a batch axis over every JAX device (all GPUs, or CPU cores exposed as devices).

On CPU, XLA runs one device per thread: ``weakgrad`` commands expose one device per core
(``--xla_force_host_platform_device_count``) so that independent neurons, trials and
parameter samples use all cores. Library users opt in the same way, before JAX starts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["pad_to_devices", "shard_leading"]


def pad_to_devices(x: Array, size: int | None = None) -> tuple[Array, int]:
    """Pad the leading axis (by repeating the last entry) to ``size`` (default: its length)
    rounded up to a multiple of the device count; returns the padded array and the
    original length. A fixed ``size`` keeps every chunk of a sweep one compiled shape."""
    n = x.shape[0]
    d = jax.device_count()
    target = max(n, size or n)
    extra = target - n + (-target) % d
    if extra:
        x = jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)])
    return x, n


def shard_leading(x: Array) -> Array:
    """Place ``x`` with its leading axis split across all devices (a no-op on one)."""
    if jax.device_count() == 1:
        return x
    mesh = Mesh(np.asarray(jax.devices()), ("batch",))
    return jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
