"""Gaussian smoothing by the log-likelihood (score-function) trick: the evolution-strategies
gradient.

The smoothed loss ``L_sigma(theta) = E_{e ~ N(0, I)} L(theta + sigma e)`` has gradient
``E[L(theta + sigma e) e] / sigma`` (study 000, "Computing Gradient of Molified Loss";
Salimans et al. 2017). For a quadratic loss ``L_sigma`` differs from ``L`` by a constant, so
the estimate converges to the true gradient as ``samples`` grows.
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
    _check_pairs,
    _check_positive,
)
from weakgrad.objectives.base import population_keys
from weakgrad.sim.random import normal_array

__all__ = ["GaussianSmoothing", "centered_ranks"]


def centered_ranks(x: Array) -> Array:
    """Ranks of ``x`` scaled to [-0.5, 0.5] (ties broken by position)."""
    n = x.shape[0]
    ranks = jnp.zeros(n, x.dtype).at[jnp.argsort(x)].set(jnp.arange(n, dtype=x.dtype))
    return ranks / max(n - 1, 1) - 0.5


class GaussianSmoothing(AbstractSamplingEstimator):
    """Score-function gradient of the Gaussian-smoothed loss.

    Attributes:
        sigma: standard deviation of the parameter perturbations (parameter units).
        samples: number of loss evaluations per estimate (even when ``antithetic``).
        antithetic: evaluate each perturbation ``e`` together with ``-e``; the pair
            difference cancels the constant part of the loss (an exact baseline).
        baseline: without antithetic pairs, subtract the mean loss of the population
            (reduces variance; the estimate then has an ``O(1/samples)`` bias).
        rank_shaping: replace losses by their centered ranks (robust to outliers and to
            the loss scale; the result is a descent direction, no longer the gradient's
            magnitude).
        common_noise: the same neuron-noise key for every perturbation of one estimate
            (common random numbers): the loss differences then reflect the parameters, not
            the noise. Matters for noisy neurons.
    """

    sigma: float = 0.01
    samples: int = eqx.field(static=True, default=100)
    antithetic: bool = eqx.field(static=True, default=True)
    baseline: bool = eqx.field(static=True, default=True)
    rank_shaping: bool = eqx.field(static=True, default=False)
    common_noise: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_positive("GaussianSmoothing", sigma=self.sigma)
        _check_pairs("GaussianSmoothing", self.samples, self.antithetic)

    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        k_eps, k_noise = jax.random.split(key)
        s, d = self.samples, theta.shape[0]
        sigma = jnp.asarray(self.sigma, theta.dtype)
        n = s // 2 if self.antithetic else s
        eps = normal_array(k_eps, (n, d), theta.dtype)
        if self.antithetic:
            thetas = jnp.concatenate([theta + sigma * eps, theta - sigma * eps])
        else:
            thetas = theta + sigma * eps
        losses = f(thetas, population_keys(k_noise, s, self.common_noise))
        weights = centered_ranks(losses) if self.rank_shaping else losses
        if self.antithetic:
            w = (weights[:n] - weights[n:]) / 2
        elif self.baseline:
            w = weights - weights.mean()
        else:
            w = weights
        g = (w @ eps) / (n * sigma)
        stderr = None
        if n > 1:
            # Std of the per-sample terms w_k e_k / sigma, without forming the (n, d) matrix.
            second = ((w * w) @ (eps * eps)) / (n * sigma * sigma)
            var = jnp.maximum(second - g * g, 0.0) * n / (n - 1)
            stderr = jnp.sqrt(var / n)
        return g, state, EstimatorInfo(jnp.asarray(s, jnp.int32), losses.mean(), stderr)
