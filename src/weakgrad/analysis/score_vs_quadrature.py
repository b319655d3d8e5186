"""The study's comparison of the two ways to get the gradient of a Gaussian-smoothed loss
in one dimension (000, "Computing Gradient of Molified Loss"):

- Monte Carlo with the log-likelihood trick, ``g(x) ~ mean_s f(x + sigma e_s) e_s / sigma``
  (no baseline, as in the study), whose variance grows with ``f`` itself, so it blows up
  where the loss grows quadratically at the borders;
- quadrature of ``g(x) = integral f(x + sigma z) z phi(z) dz / sigma`` with the same number
  of nodes (trapezoid rule over +-6 sigma), which the size of ``f`` does not disturb.

The reference is the same integral on a fine trapezoid grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["toy_loss", "ScoreVsQuadrature", "score_vs_quadrature"]


def toy_loss(x: np.ndarray) -> np.ndarray:
    """A jagged 1-D loss that grows quadratically towards the borders of [-10, 10]: a bowl,
    a sawtooth of steps (spikes gained or lost) and steeper walls beyond |x| = 6."""
    x = np.asarray(x, np.float64)
    return 0.05 * x**2 + 0.3 * np.floor(2 * np.sin(3 * x)) + 0.5 * np.maximum(np.abs(x) - 6, 0) ** 2


def _mc(f, x, sigma, samples, rng):
    e = rng.standard_normal((samples, x.size))  # fresh samples at every x
    return np.mean(f(x[None, :] + sigma * e) * e, axis=0) / sigma


def _quadrature(f, x, sigma, nodes):
    # Trapezoid rule on [-6, 6] standard deviations: robust to the loss's jumps (a
    # Gauss-Hermite rule assumes smoothness, and its nodes overflow beyond ~150).
    z = np.linspace(-6, 6, nodes)
    w = np.full(nodes, z[1] - z[0])
    w[[0, -1]] /= 2
    w = w * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return (w * z) @ f(x[None, :] + sigma * z[:, None]) / sigma


def _reference(f, x, sigma, points=20001):
    z = np.linspace(-8, 8, points)
    phi = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    vals = f(x[None, :] + sigma * z[:, None])
    return np.trapezoid((z * phi)[:, None] * vals, z, axis=0) / sigma


@dataclasses.dataclass(frozen=True)
class ScoreVsQuadrature:
    """Smoothed-gradient estimates on a grid ``x``: ``monte_carlo[S]`` and ``quadrature[S]``
    for each sample count ``S``, and the fine-grid ``reference``."""

    x: np.ndarray
    loss: np.ndarray
    reference: np.ndarray
    monte_carlo: dict[int, np.ndarray]
    quadrature: dict[int, np.ndarray]
    sigma: float

    def rms_error(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {"monte_carlo": {}, "quadrature": {}}
        for name in out:
            for s, g in getattr(self, name).items():
                out[name][s] = float(np.sqrt(np.mean((g - self.reference) ** 2)))
        return out

    def rows(self) -> list[list[float]]:
        keys = sorted(self.monte_carlo)
        return [
            [float(self.x[i]), float(self.loss[i]), float(self.reference[i])]
            + [float(self.monte_carlo[s][i]) for s in keys]
            + [float(self.quadrature[s][i]) for s in keys]
            for i in range(self.x.size)
        ]

    def header(self) -> list[str]:
        keys = sorted(self.monte_carlo)
        return (
            ["x", "loss", "reference"]
            + [f"monte_carlo_{s}" for s in keys]
            + [f"quadrature_{s}" for s in keys]
        )


def score_vs_quadrature(
    f: Callable[[np.ndarray], np.ndarray] = toy_loss,
    *,
    x: np.ndarray | None = None,
    sigma: float = 1.0,
    samples: Sequence[int] = (100, 1000),
    seed: int = 0,
) -> ScoreVsQuadrature:
    """Both estimates of the smoothed gradient at every ``x`` (default 201 points on
    [-10, 10]) for each sample count; Monte Carlo draws fresh samples at every ``x``."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}.")
    if not samples or any(int(s) < 2 for s in samples):
        raise ValueError(f"samples must list ints >= 2, got {list(samples)}.")
    x = np.linspace(-10, 10, 201) if x is None else np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    mc = {int(s): _mc(f, x, sigma, int(s), rng) for s in samples}
    quad = {int(s): _quadrature(f, x, sigma, int(s)) for s in samples}
    return ScoreVsQuadrature(x, f(x), _reference(f, x, sigma), mc, quad, float(sigma))
