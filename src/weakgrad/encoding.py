"""Encoders from pixel intensities to network inputs.

- :func:`constant_current`: each pixel in [0, 1] becomes a constant current
  ``gain * pixel + offset`` (uA/cm^2 for Hodgkin-Huxley layers).
- :func:`poisson_spikes`: each pixel becomes a Poisson spike train of rate
  ``max_rate_hz * pixel``, as a ``(steps, n)`` array of 0/1 per step of ``dt`` ms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

__all__ = ["constant_current", "poisson_spikes"]


def constant_current(pixels: Array, *, gain: float = 1.0, offset: float = 0.0) -> Array:
    """``gain * pixels + offset``; ``pixels`` in [0, 1], any leading shape."""
    return gain * jnp.asarray(pixels) + offset


def poisson_spikes(
    key: Array, pixels: Array, *, steps: int, dt: float, max_rate_hz: float = 100.0
) -> Array:
    """Bernoulli approximation of Poisson trains: ``(steps, *pixels.shape)`` of 0/1 with
    per-step probability ``max_rate_hz * pixel * dt / 1000`` (must stay <= 1)."""
    p = max_rate_hz * jnp.asarray(pixels) * dt / 1000.0
    if max_rate_hz * dt / 1000.0 > 1:
        raise ValueError(
            f"poisson_spikes: max_rate_hz * dt = {max_rate_hz * dt / 1000:.3g} spikes per step "
            "exceeds 1; lower max_rate_hz or dt."
        )
    u = jax.random.uniform(key, (steps, *p.shape), p.dtype)
    return (u < p).astype(p.dtype)
