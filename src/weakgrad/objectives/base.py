"""Objectives: what estimators sample. A stochastic loss ``L(params, key)`` that can also be
evaluated for a whole population of parameter samples in one call.

Two kinds:

- :class:`Objective` wraps a JAX function ``loss(params, key) -> scalar``. Its population
  evaluation is one ``vmap`` whose sample axis is split across every JAX device, so the
  same code uses all GPUs of a machine (or all CPU cores exposed as devices).
- :class:`HostObjective` wraps a plain Python/NumPy callable that evaluates a batch of flat
  parameter vectors ``(S, d) -> (S,)``: an external simulator, a model weakgrad did not
  write. It is called through ``jax.pure_callback``, so estimators stay jittable; given a
  :class:`concurrent.futures.Executor` it evaluates the population in chunks in parallel
  (a process pool on one machine, Dask or Ray on a cluster).

Network objectives (which also support node perturbation and surrogate gradients) live in
:mod:`weakgrad.objectives.network`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

from weakgrad.parallel import shard_population

__all__ = ["AbstractObjective", "Objective", "HostObjective", "population_keys"]


def population_keys(key: Array, n: int, common: bool) -> Array:
    """One key per population member: all equal (common random numbers) or independent."""
    if common:
        return jnp.repeat(key[None], n, axis=0)
    return jax.random.split(key, n)


class AbstractObjective(eqx.Module):
    """A stochastic loss of a parameter pytree."""

    @abc.abstractmethod
    def __call__(self, params: Any, key: Array) -> Array:
        """The loss (scalar) at ``params`` for the noise drawn from ``key``."""

    @abc.abstractmethod
    def population(self, params: Any, keys: Array) -> Array:
        """Losses ``(S,)`` of ``S`` parameter samples: every leaf of ``params`` has a leading
        axis of size ``S``; ``keys`` holds one key per sample."""


class Objective(AbstractObjective):
    """A JAX loss function ``loss(params, key) -> scalar``.

    Example:
        >>> obj = Objective(lambda p, key: jnp.sum(p["w"] ** 2))
    """

    fn: Callable[[Any, Array], Array]

    def __check_init__(self):
        if not callable(self.fn):
            raise TypeError(
                f"Objective.fn must be callable (params, key) -> loss, got {self.fn!r}."
            )

    def __call__(self, params: Any, key: Array) -> Array:
        return self.fn(params, key)

    def population(self, params: Any, keys: Array) -> Array:
        (params, keys), n = shard_population((params, keys))
        losses = jax.vmap(self.fn)(params, keys)
        if jnp.shape(losses)[1:] != ():
            raise ValueError(
                f"Objective.fn must return a scalar loss, got shape {jnp.shape(losses)[1:]}."
            )
        return losses[:n]


def _evaluate_rows(
    fn: Callable[..., Any], takes_seed: bool, thetas: np.ndarray, seeds: np.ndarray
) -> np.ndarray:
    """``fn`` on some rows, checked to return one loss per row (module level: an executor
    pickles it, with ``fn``, to run in another process)."""
    out = np.asarray(fn(thetas, seeds) if takes_seed else fn(thetas))
    s = thetas.shape[0]
    if out.shape != (s,):
        raise ValueError(
            f"HostObjective.fn returned shape {out.shape} for {s} parameter vectors; it "
            f"must return one loss per row, shape ({s},)."
        )
    return out


class HostObjective(AbstractObjective):
    """A NumPy callable ``fn(thetas) -> losses`` over flat parameter vectors.

    Attributes:
        fn: takes a float array ``(S, d)`` (one flattened parameter vector per row, in the
            order of ``jax.flatten_util.ravel_pytree``) and returns ``(S,)`` finite losses.
            With ``takes_seed`` it is called as ``fn(thetas, seeds)`` with one uint32 seed
            per row (equal seeds = common random numbers).
        takes_seed: whether ``fn`` accepts the per-row seeds.
        executor: None (default): ``fn`` gets the whole population in this process. Or any
            :class:`concurrent.futures.Executor`: ``ProcessPoolExecutor`` on one machine,
            ``dask.distributed.Client(...).get_executor()`` or Ray's executor on a cluster.
            The population is then split into ``chunks`` consecutive blocks of rows, one
            ``fn`` call each, run by the executor and put back in order. ``fn`` must then
            be picklable (a module-level function, or a ``functools.partial`` of one) and
            treat rows independently (each row's loss a function of its row and its seed),
            so that the losses equal the serial ones for the same seeds. The executor is
            the caller's: weakgrad neither starts nor shuts it down.
        chunks: blocks per population with an executor (None: one per row, the most
            parallel; fewer, larger blocks when a call has a fixed cost such as starting a
            simulator). A population of fewer rows gets one block per row.
    """

    fn: Callable[..., Any] = eqx.field(static=True)
    takes_seed: bool = eqx.field(static=True, default=False)
    executor: Executor | None = eqx.field(static=True, default=None)
    chunks: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not callable(self.fn):
            raise TypeError(
                f"HostObjective.fn must be callable (thetas) -> losses, got {self.fn!r}."
            )
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise TypeError(
                "HostObjective.executor must be a concurrent.futures.Executor (e.g. "
                "ProcessPoolExecutor(), or a Dask client's get_executor()) or None, got "
                f"{self.executor!r}."
            )
        if self.chunks is not None and (
            isinstance(self.chunks, bool) or not isinstance(self.chunks, int) or self.chunks < 1
        ):
            raise ValueError(
                f"HostObjective.chunks must be a positive integer or None (one block per "
                f"row), got {self.chunks!r}."
            )

    def _evaluate(self, thetas: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Losses of all rows: one call of ``fn``, or blocks of rows through the executor."""
        s = thetas.shape[0]
        if self.executor is None or s == 0:
            return _evaluate_rows(self.fn, self.takes_seed, thetas, seeds)
        blocks = np.array_split(np.arange(s), min(s, self.chunks or s))
        futures = [
            self.executor.submit(
                _evaluate_rows, self.fn, self.takes_seed, thetas[rows], seeds[rows]
            )
            for rows in blocks
            if rows.size
        ]
        return np.concatenate([f.result() for f in futures])

    def _call_host(self, thetas: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        thetas = np.asarray(thetas)
        out = self._evaluate(thetas, np.asarray(seeds))
        s = thetas.shape[0]
        bad = ~np.isfinite(out)
        if bad.any():
            raise ValueError(
                f"HostObjective.fn returned a non-finite loss for {int(bad.sum())} of {s} "
                f"parameter vectors (first: row {int(np.argmax(bad))}, value "
                f"{out[np.argmax(bad)]}); return finite losses (check the simulator's dt and "
                "the perturbation size sigma)."
            )
        return out.astype(thetas.dtype)

    def _host(self, thetas: Array, keys: Array) -> Array:
        seeds = jax.vmap(lambda k: jax.random.bits(k, (), jnp.uint32))(keys)
        if not isinstance(thetas, jax.core.Tracer) and not isinstance(seeds, jax.core.Tracer):
            # Outside jit: call fn directly, so its errors (and ours, naming HostObjective.fn)
            # reach the caller as they are, not wrapped in an XLA callback error.
            return jnp.asarray(self._call_host(np.asarray(thetas), np.asarray(seeds)))
        shape = jax.ShapeDtypeStruct((thetas.shape[0],), thetas.dtype)
        return jax.pure_callback(self._call_host, shape, thetas, seeds, vmap_method="sequential")

    def __call__(self, params: Any, key: Array) -> Array:
        flat, _ = ravel_pytree(params)
        return self._host(flat[None], key[None])[0]

    def population(self, params: Any, keys: Array) -> Array:
        thetas = jax.vmap(lambda p: ravel_pytree(p)[0])(params)
        return self._host(thetas, keys)
