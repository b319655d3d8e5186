"""Finite differences: per-coordinate central differences and random-direction SPSA.

Central differences: ``g_i = (L(theta + h e_i) - L(theta - h e_i)) / (2h)``, ``2d``
evaluations, error ``O(h^2)`` on smooth losses. SPSA (Spall, IEEE TAC 1992): for random
sign vectors ``D``, ``g = mean_k (L(theta + c D_k) - L(theta - c D_k)) / (2c) D_k``; two
evaluations per direction whatever ``d`` is.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.estimators._base import (
    AbstractSamplingEstimator,
    EstimatorInfo,
    FlatObjective,
    _check_positive,
    _check_samples,
)
from weakgrad.objectives.base import population_keys
from weakgrad.sim.random import normal_array

__all__ = ["CentralDifference", "SPSA"]


class CentralDifference(AbstractSamplingEstimator):
    """Central differences along every coordinate.

    Attributes:
        step: the difference step ``h`` (parameter units).
        chunk: coordinates evaluated per batched call (bounds memory at ``2 chunk d``).
        common_noise: evaluate every point with the same noise key (common random numbers);
            for stochastic losses this removes the noise that does not depend on theta.
    """

    step: float = 1e-3
    chunk: int = eqx.field(static=True, default=256)
    common_noise: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_positive("CentralDifference", step=self.step, chunk=self.chunk)

    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        d = theta.shape[0]
        chunk = min(self.chunk, d)
        n_chunks = -(-d // chunk)
        idx = jnp.arange(n_chunks * chunk).reshape(n_chunks, chunk)
        h = jnp.asarray(self.step, theta.dtype)

        def one_chunk(args):
            rows, k = args
            onehot = jax.nn.one_hot(rows, d, dtype=theta.dtype) * h  # rows past d are zero
            thetas = jnp.concatenate([theta + onehot, theta - onehot])
            losses = f(thetas, population_keys(k, 2 * chunk, self.common_noise))
            return (losses[:chunk] - losses[chunk:]) / (2 * h), losses.mean()

        keys = (
            jnp.repeat(key[None], n_chunks, 0)
            if self.common_noise
            else jax.random.split(key, n_chunks)
        )
        g, means = jax.lax.map(one_chunk, (idx, keys))
        g = g.reshape(-1)[:d]
        return g, state, EstimatorInfo(jnp.asarray(2 * d, jnp.int32), means.mean())


class SPSA(AbstractSamplingEstimator):
    """Simultaneous-perturbation stochastic approximation with Rademacher directions.

    Attributes:
        step: perturbation size ``c`` (parameter units).
        samples: number of directions (``2 * samples`` evaluations).
        common_noise: the same noise key for every evaluation of one estimate.
    """

    step: float = 1e-2
    samples: int = eqx.field(static=True, default=16)
    common_noise: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_positive("SPSA", step=self.step)
        _check_samples("SPSA", self.samples)

    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        k_dir, k_noise = jax.random.split(key)
        n = self.samples
        signs = jnp.sign(normal_array(k_dir, (n, theta.shape[0]), theta.dtype))
        c = jnp.asarray(self.step, theta.dtype)
        thetas = jnp.concatenate([theta + c * signs, theta - c * signs])
        losses = f(thetas, population_keys(k_noise, 2 * n, self.common_noise))
        per = ((losses[:n] - losses[n:]) / (2 * c))[:, None] * signs
        g = per.mean(0)
        stderr = per.std(0, ddof=1) / jnp.sqrt(n) if n > 1 else None
        return g, state, EstimatorInfo(jnp.asarray(2 * n, jnp.int32), losses.mean(), stderr)
