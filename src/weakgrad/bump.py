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

__all__ = ["bump", "bump_constant", "bump_grad_log", "sample_bump"]


def _radial(r: np.ndarray, n: int) -> np.ndarray:
    inside = r < 1
    safe = np.where(inside, r, 0.0)
    return np.where(inside, safe ** (n - 1) * np.exp(1.0 / (safe * safe - 1.0)), 0.0)


@lru_cache(maxsize=64)
def bump_constant(n: int) -> float:
    """``k_n``: one over the integral of ``exp(1/(|x|^2-1))`` over the unit ball of R^n
    (``k_1 = 2.2522836...``)."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"bump dimension n must be an int >= 1, got {n!r}.")
    x, w = np.polynomial.legendre.leggauss(200)
    r = 0.5 * (x + 1.0)
    radial = 0.5 * np.sum(w * _radial(r, n))
    sphere = 2 * math.pi ** (n / 2) / math.gamma(n / 2)  # surface of the unit sphere S^(n-1)
    return 1.0 / (sphere * radial) if n > 1 else 1.0 / (2 * radial)


def bump(x: Array, width: float = 1.0) -> Array:
    """The normalised bump ``phi_width`` at points ``x`` of shape ``(..., n)`` (1/units^n)."""
    x = jnp.asarray(x)
    n = x.shape[-1]
    u = x / width
    r2 = jnp.sum(u * u, axis=-1)
    inside = r2 < 1
    safe = jnp.where(inside, r2, 0.0)
    return jnp.where(inside, bump_constant(n) * jnp.exp(1.0 / (safe - 1.0)), 0.0) / width**n


def bump_grad_log(x: Array) -> Array:
    """``grad log phi(x) = -2 x / (1 - |x|^2)^2`` for ``|x| < 1`` (unit width), 0 outside."""
    r2 = jnp.sum(x * x, axis=-1, keepdims=True)
    inside = r2 < 1
    safe = jnp.where(inside, 1.0 - r2, 1.0)
    return jnp.where(inside, -2.0 * x / (safe * safe), 0.0)


@lru_cache(maxsize=64)
def _radius_table(n: int, points: int = 4097) -> tuple[np.ndarray, np.ndarray]:
    r = np.linspace(0.0, 1.0, points)
    pdf = _radial(r, n)
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
