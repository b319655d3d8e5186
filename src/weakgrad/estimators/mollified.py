"""Gradient of the loss mollified by the bump kernel of study 000.

``L_eps(theta) = integral phi_eps(u) L(theta + u) du`` with the compactly supported bump
``phi_eps`` (:mod:`weakgrad.analysis.bump`). Its gradient needs no derivative of ``L``:

``grad L_eps(theta) = -integral L(theta + u) grad phi_eps(u) du
                     = E_{u ~ phi_eps}[ L(theta + u) (-grad log phi_eps(u)) ]``.

:class:`MollifiedQuadrature` evaluates the first integral on a Gauss-Legendre grid (the
study's "integration approach"; ``points^d`` evaluations, so for ``d <= 2``);
:class:`MollifiedMonteCarlo` samples the second (the log-likelihood trick with the bump as
the smoothing density), for any ``d``.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.analysis.bump import bump, bump_grad_log, sample_bump
from weakgrad.estimators._base import (
    AbstractSamplingEstimator,
    EstimatorInfo,
    FlatObjective,
    _check_pairs,
    _check_positive,
    _check_samples,
)
from weakgrad.objectives.base import population_keys

__all__ = ["MollifiedQuadrature", "MollifiedMonteCarlo"]


class MollifiedQuadrature(AbstractSamplingEstimator):
    """Mollified gradient by tensor Gauss-Legendre quadrature over the kernel's support.

    Attributes:
        width: support radius ``eps`` of the bump (parameter units).
        points: quadrature nodes per dimension (``points^d`` evaluations; ``d`` <= 2).
        common_noise: the same noise key at every node.
    """

    width: float = 0.1
    points: int = eqx.field(static=True, default=64)
    common_noise: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_positive("MollifiedQuadrature", width=self.width)
        _check_samples("MollifiedQuadrature", self.points, 2)

    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        d = theta.shape[0]
        if d > 2:
            raise ValueError(
                f"MollifiedQuadrature integrates on a grid of points^d nodes and takes d <= 2 "
                f"parameters, got d={d}; use MollifiedMonteCarlo (or Masked) for more."
            )
        x1, w1 = np.polynomial.legendre.leggauss(self.points)
        grids = np.meshgrid(*([x1] * d), indexing="ij")
        nodes = np.stack([g.reshape(-1) for g in grids], -1)  # unit-ball coordinates
        weights = np.prod(np.stack(np.meshgrid(*([w1] * d), indexing="ij")), 0).reshape(-1)
        nodes_j = jnp.asarray(nodes, theta.dtype)
        # grad_u phi_eps(u) at u = eps x is eps^-(d+1) phi(x) grad log phi(x).
        kernel_grad = bump(nodes_j)[:, None] * bump_grad_log(nodes_j)
        coeff = jnp.asarray(weights, theta.dtype)[:, None] * kernel_grad / self.width
        losses = f(
            theta + self.width * nodes_j, population_keys(key, nodes.shape[0], self.common_noise)
        )
        g = -(losses[:, None] * coeff).sum(0)
        return g, state, EstimatorInfo(jnp.asarray(nodes.shape[0], jnp.int32), losses.mean())


class MollifiedMonteCarlo(AbstractSamplingEstimator):
    """Mollified gradient by Monte Carlo with the bump as sampling density.

    Attributes:
        width: support radius ``eps`` of the bump (parameter units). The bump in ``d``
            dimensions concentrates near radius 1, so each coordinate moves by about
            ``width / sqrt(d)``.
        samples: evaluations per estimate (even when ``antithetic``).
        antithetic: pair each ``u`` with ``-u`` (exact baseline, as for Gaussian smoothing).
        common_noise: the same noise key for every sample of one estimate.
    """

    width: float = 0.1
    samples: int = eqx.field(static=True, default=100)
    antithetic: bool = eqx.field(static=True, default=True)
    common_noise: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_positive("MollifiedMonteCarlo", width=self.width)
        _check_pairs("MollifiedMonteCarlo", self.samples, self.antithetic)

    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        k_x, k_noise = jax.random.split(key)
        d, s = theta.shape[0], self.samples
        n = s // 2 if self.antithetic else s
        x = sample_bump(k_x, (n,), d, theta.dtype)
        score = -bump_grad_log(x) / self.width  # -grad_u log phi_eps(u) at u = eps x
        if self.antithetic:
            thetas = jnp.concatenate([theta + self.width * x, theta - self.width * x])
        else:
            thetas = theta + self.width * x
        losses = f(thetas, population_keys(k_noise, s, self.common_noise))
        w = (losses[:n] - losses[n:]) / 2 if self.antithetic else losses - losses.mean()
        per = w[:, None] * score
        g = per.mean(0)
        stderr = per.std(0, ddof=1) / jnp.sqrt(n) if n > 1 else None
        return g, state, EstimatorInfo(jnp.asarray(s, jnp.int32), losses.mean(), stderr)
