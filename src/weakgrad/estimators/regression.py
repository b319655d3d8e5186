"""Regression sampling: fit a plane to the loss around theta; its slope is the gradient.

Draw ``S`` perturbations ``E = sigma Z``, ``Z ~ N(0, I)`` (``S x d``), evaluate the losses
``y`` and solve the least-squares problem ``y ~ a + Z b`` with an intercept; the gradient
is ``b / sigma`` (study 000, "Gradient Descent on This Landscape" and "Real Application:
MNIST"). With ``S >= d + 1`` and a linear loss the fit is exact.

The solve never calls ``lstsq`` on the ``S x d`` matrix. With ``X = [1, Z]`` it uses the
normal equations on the smaller side, both Cholesky:

- ``S <= d + 1``: ``b = Zc^T c`` with ``(Zc Zc^T + 1 1^T) c = yc`` (``S x S``) on centred
  ``Z`` and ``y``: the minimum-norm slope with a free intercept. (Penalising the intercept
  too, as ``lstsq`` on ``[1, Z]`` does, leaks the mean loss into the slope: with ``S`` well
  below ``d`` that error is larger than the gradient itself.)
- ``S > d + 1``: ``(Zc^T Zc) b = Zc^T yc`` (``d x d``), which also gives the classical
  standard error of each slope.

Forming the Gram matrix costs ``min(S, d)^2 max(S, d)`` and dominates. ``refresh_every``
amortises it: a base matrix ``Z0`` is drawn and factorised once every ``refresh_every``
estimates, and in between each estimate uses ``Z = Z0 P D`` for a fresh random column
permutation ``P`` and random signs ``D``. Every row of ``Z`` is still ``N(0, I)``, but the
Gram matrix is unchanged (``S <= d+1``) or permuted (``S > d+1``), so the stored Cholesky
factor is reused at ``O(S d)`` cost per estimate.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.scipy.linalg import cho_factor, cho_solve

from weakgrad.estimators._base import (
    AbstractSamplingEstimator,
    EstimatorInfo,
    FlatObjective,
    _check_pairs,
    _check_positive,
    _check_samples,
)
from weakgrad.objectives.base import population_keys
from weakgrad.sim.random import normal_array

__all__ = ["Regression", "regression_slope"]


def _center(z: Array, intercept: bool) -> Array:
    return z - z.mean(0) if intercept else z


def _gram(z: Array, wide: bool, intercept: bool = True) -> Array:
    zc = _center(z, intercept)
    if wide:
        # With an intercept Zc Zc^T is singular along the ones vector (centring); adding
        # 1 1^T fixes that without changing the solution for centred right-hand sides.
        return zc @ zc.T + (1.0 if intercept else 0.0)
    return zc.T @ zc


def _factor(gram: Array, ridge: float) -> Array:
    n = gram.shape[0]
    jitter = ridge * jnp.trace(gram) / n
    return cho_factor(gram + jitter * jnp.eye(n, dtype=gram.dtype), lower=True)[0]


def _solve(
    chol: Array, z: Array, y: Array, wide: bool, intercept: bool = True
) -> tuple[Array, Array | None]:
    """Slope of ``y ~ a + z b`` (or ``y ~ z b`` without intercept) given the Cholesky
    factor of ``_gram(z, wide, intercept)``; also the standard error of each slope in the
    tall case."""
    zc = _center(z, intercept)
    yc = y - y.mean() if intercept else y
    if wide:
        c = cho_solve((chol, True), yc)
        return zc.T @ c, None
    b = cho_solve((chol, True), zc.T @ yc)
    s, d = z.shape
    rss = jnp.sum((yc - zc @ b) ** 2)
    # diag of (Zc^T Zc)^-1 = column norms of L^-1.
    l_inv = jax.scipy.linalg.solve_triangular(chol, jnp.eye(d, dtype=z.dtype), lower=True)
    dof = max(s - d - (1 if intercept else 0), 1)
    var = rss / dof * jnp.sum(l_inv * l_inv, axis=0)
    return b, jnp.sqrt(var)


def regression_slope(z: Array, y: Array, *, ridge: float = 0.0) -> Array:
    """Least-squares slope ``b`` of ``y ~ a + z b`` (``z``: ``S x d``), by Cholesky on the
    smaller side; equals ``lstsq(zc, yc)`` on centred data (the minimum-norm slope with a
    free intercept when ``S <= d + 1``)."""
    wide = z.shape[0] <= z.shape[1] + 1
    return _solve(_factor(_gram(z, wide), ridge), z, y, wide)[0]


class RegressionState(eqx.Module):
    """Cached base perturbations and their Cholesky factor (``refresh_every > 1``)."""

    count: Array
    z0: Array
    chol: Array


class Regression(AbstractSamplingEstimator):
    """Least-squares fit of the loss on random Gaussian perturbations.

    Attributes:
        sigma: standard deviation of the perturbations (parameter units).
        samples: number of perturbations ``S`` per estimate (evaluations).
        refresh_every: draw and factorise new base perturbations every this many estimates
            (1: every estimate, fully independent samples). See the module docstring.
        ridge: Cholesky jitter relative to the mean diagonal of the Gram matrix; keeps the
            solve finite near ``S = d + 1``, where the Gram matrix is worst conditioned.
        antithetic: draw ``S/2`` perturbations and evaluate each with both signs. The
            least-squares fit with intercept on this design is exactly the fit of the half
            differences ``(y(+z) - y(-z)) / 2`` on ``z``: even-order terms of the loss (its
            curvature) cancel, and the Gram matrix is ``S/2`` wide, so the solve costs a
            quarter. Exact on linear losses from ``S >= 2d`` (instead of ``d + 1``).
        common_noise: the same neuron-noise key for every perturbation of one estimate.
    """

    sigma: float = 0.01
    samples: int = eqx.field(static=True, default=100)
    refresh_every: int = eqx.field(static=True, default=1)
    ridge: float = 1e-6
    antithetic: bool = eqx.field(static=True, default=False)
    common_noise: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_positive("Regression", sigma=self.sigma)
        _check_samples("Regression", self.samples, 2)
        _check_pairs("Regression", self.samples, self.antithetic)
        if not (isinstance(self.refresh_every, int) and self.refresh_every >= 1):
            raise ValueError(
                f"Regression.refresh_every must be an int >= 1, got {self.refresh_every!r}."
            )
        if not self.ridge >= 0:
            raise ValueError(f"Regression.ridge must be >= 0, got {self.ridge!r}.")

    def _rows(self, d: int) -> tuple[int, bool, bool]:
        """Rows of the design matrix, whether it is wide, and whether it has an intercept."""
        if self.antithetic:
            n = self.samples // 2
            return n, n <= d, False
        return self.samples, self.samples <= d + 1, True

    def _base(self, key: Array, d: int, dtype: Any) -> tuple[Array, Array]:
        n, wide, intercept = self._rows(d)
        z0 = normal_array(key, (n, d), dtype)
        return z0, _factor(_gram(z0, wide, intercept), self.ridge)

    def init_flat(self, theta: Array) -> Any:
        if self.refresh_every == 1:
            return ()
        d = theta.shape[0]
        s, wide, _ = self._rows(d)
        n = s if wide else d
        return RegressionState(
            jnp.asarray(0, jnp.int32),
            jnp.zeros((s, d), theta.dtype),
            jnp.zeros((n, n), theta.dtype),
        )

    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        k_base, k_perm, k_sign, k_noise = jax.random.split(key, 4)
        s, d = self.samples, theta.shape[0]
        n, wide, intercept = self._rows(d)
        sigma = jnp.asarray(self.sigma, theta.dtype)
        if self.refresh_every == 1:
            z0, chol = self._base(k_base, d, theta.dtype)
            z = z0
            perm = signs = None
        else:
            z0, chol = jax.lax.cond(
                state.count % self.refresh_every == 0,
                lambda: self._base(k_base, d, theta.dtype),
                lambda: (state.z0, state.chol),
            )
            state = RegressionState(state.count + 1, z0, chol)
            perm = jax.random.permutation(k_perm, d)
            signs = jnp.sign(normal_array(k_sign, (d,), theta.dtype))
            z = z0[:, perm] * signs
        points = jnp.concatenate([z, -z]) if self.antithetic else z
        losses = f(theta + sigma * points, population_keys(k_noise, s, self.common_noise))
        y = (losses[:n] - losses[n:]) / 2 if self.antithetic else losses
        if perm is None or wide:
            b, se = _solve(chol, z, y, wide, intercept)
        else:
            # z = z0 P D is a change of coordinates: fit on z0 (whose factor we hold), map back.
            b0, se0 = _solve(chol, z0, y, wide, intercept)
            b, se = b0[perm] * signs, se0[perm]
        stderr = None if se is None else se / sigma
        return b / sigma, state, EstimatorInfo(jnp.asarray(s, jnp.int32), losses.mean(), stderr)
