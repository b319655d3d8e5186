"""The bump mollifier of study 000 ("Mollification"), in any dimension.

``phi(x) = k_n exp(1 / (|x|^2 - 1))`` for ``|x| < 1`` and 0 outside, with ``k_n`` making it
integrate to 1 over R^n; ``phi_eps(x) = eps^-n phi(x / eps)`` has support radius ``eps``.
It is smooth with compact support (a true mollifier, unlike a Gaussian).

The normalising constant and the radial sampler use the radial density
``r^(n-1) exp(1 / (r^2 - 1))`` on [0, 1], integrated once in NumPy by Gauss-Legendre
quadrature (the integrand is C-infinity and flat at r = 1, so it converges fast).
"""

from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = ["bump", "bump_constant", "log_bump_constant", "bump_grad_log", "sample_bump"]


def _log_radial(r: np.ndarray, n: int) -> np.ndarray:
    """log of the radial density r^(n-1) exp(1/(r^2-1)) (-inf outside (0, 1))."""
    inside = (r > 0) & (r < 1)
    safe = np.where(inside, r, 0.5)
    return np.where(inside, (n - 1) * np.log(safe) + 1.0 / (safe * safe - 1.0), -np.inf)


@lru_cache(maxsize=64)
def log_bump_constant(n: int) -> float:
    """``log k_n``, stable for any dimension."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"bump dimension n must be an int >= 1, got {n!r}.")
    x, w = np.polynomial.legendre.leggauss(400)
    r = 0.5 * (x + 1.0)
    terms = np.log(0.5 * w) + _log_radial(r, n)
    top = terms.max()
    log_radial = top + np.log(np.sum(np.exp(terms - top)))
    # Surface of the unit sphere S^(n-1) is 2 pi^(n/2) / Gamma(n/2); for n = 1 it is 2.
    log_sphere = math.log(2) + (n / 2) * math.log(math.pi) - math.lgamma(n / 2)
    return -(log_sphere + log_radial)


def bump_constant(n: int) -> float:
    """``k_n``: one over the integral of ``exp(1/(|x|^2-1))`` over the unit ball of R^n
    (``k_1 = 2.2522836...``); overflows to inf in very high dimension (use
    :func:`log_bump_constant`)."""
    with np.errstate(over="ignore"):
        return float(np.exp(log_bump_constant(n)))


def bump(x: Array, width: float = 1.0) -> Array:
    """The normalised bump ``phi_width`` at points ``x`` of shape ``(..., n)`` (1/units^n)."""
    x = jnp.asarray(x)
    n = x.shape[-1]
    u = x / width
    r2 = jnp.sum(u * u, axis=-1)
    inside = r2 < 1
    safe = jnp.where(inside, r2, 0.0)
    log_k = log_bump_constant(n) - n * math.log(width)
    return jnp.where(inside, jnp.exp(log_k + 1.0 / (safe - 1.0)), 0.0)


def bump_grad_log(x: Array) -> Array:
    """``grad log phi(x) = -2 x / (1 - |x|^2)^2`` for ``|x| < 1`` (unit width), 0 outside."""
    r2 = jnp.sum(x * x, axis=-1, keepdims=True)
    inside = r2 < 1
    safe = jnp.where(inside, 1.0 - r2, 1.0)
    return jnp.where(inside, -2.0 * x / (safe * safe), 0.0)


@lru_cache(maxsize=64)
def _radius_table(n: int, points: int = 4097) -> tuple[np.ndarray, np.ndarray]:
    r = np.linspace(0.0, 1.0, points)
    log_pdf = _log_radial(r, n)
    pdf = np.exp(log_pdf - log_pdf[np.isfinite(log_pdf)].max())
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2)])
    return cdf / cdf[-1], r


def sample_bump(key: Array, shape: tuple[int, ...], n: int, dtype=jnp.float32) -> Array:
    """Samples of shape ``(*shape, n)`` from the unit-width bump density: a uniform direction
    times a radius drawn by inverse CDF of the radial density."""
    k_dir, k_rad = jax.random.split(key)
    cdf, r = _radius_table(n)
    direction = jax.random.normal(k_dir, (*shape, n), dtype)
    direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
    u = jax.random.uniform(k_rad, shape, dtype)
    radius = jnp.interp(u, jnp.asarray(cdf, dtype), jnp.asarray(r, dtype))
    return direction * radius[..., None]
