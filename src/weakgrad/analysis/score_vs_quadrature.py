"""The study's comparison of the two ways to get the gradient of a Gaussian-smoothed loss
in one dimension (000, "Computing Gradient of Molified Loss"):

- Monte Carlo with the log-likelihood trick, ``g(x) ~ mean_s f(x + sigma e_s) e_s / sigma``
  (no baseline, as in the study), whose variance grows with ``f`` itself, so it blows up
  where the loss grows quadratically at the borders;
- quadrature of ``g(x) = integral f(x + sigma z) z phi(z) dz / sigma`` with the same number
  of nodes (trapezoid rule over +-6 sigma), which the size of ``f`` does not disturb.

The reference is the same integral on a fine trapezoid grid. The result saves itself as
``weakgrad scorecheck`` writes it (``scorecheck.csv``, ``.png``, ``.json``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.analysis._checks import at_most, finite
from weakgrad.analysis._checks import seed as check_seed
from weakgrad.errors import ConfigError

__all__ = ["toy_loss", "ScoreVsQuadrature", "check_scorecheck", "score_vs_quadrature"]


MAX_POINTS = 1_000_000
MAX_DRAWS = 20_000_000  # samples x points, each an array of float64 held at once


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
    for each sample count ``S`` (in the order asked), and the fine-grid ``reference``;
    ``seed`` seeded the Monte-Carlo samples."""

    x: np.ndarray
    loss: np.ndarray
    reference: np.ndarray
    monte_carlo: dict[int, np.ndarray]
    quadrature: dict[int, np.ndarray]
    sigma: float
    seed: int = 0

    def errors(self, border: float = 8.0) -> dict[str, dict[str, float]]:
        """RMS error against the reference of each estimate, named ``monte_carlo_S`` and
        ``quadrature_S``: over all ``x`` (``rms``) and where ``|x| > border``
        (``rms_border``, where the loss is large)."""
        out = {}
        edge = np.abs(self.x) > border
        for name, estimates in (("monte_carlo", self.monte_carlo), ("quadrature", self.quadrature)):
            for s, g in estimates.items():
                err = g - self.reference
                out[f"{name}_{s}"] = {
                    "rms": float(np.sqrt(np.mean(err**2))),
                    "rms_border": float(np.sqrt(np.mean(err[edge] ** 2))),
                }
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

    def as_dict(self) -> dict[str, Any]:
        """``scorecheck.json``: the settings and :meth:`errors`."""
        return {
            "samples": list(self.monte_carlo),
            "sigma": self.sigma,
            "points": int(self.x.size),
            "seed": self.seed,
            "errors": self.errors(),
        }

    def summary(self) -> str:
        return "; ".join(
            f"{k}: rms error {v['rms']:.3g} ({v['rms_border']:.3g} at |x| > 8)"
            for k, v in self.errors().items()
        )

    def save(self, out: str | os.PathLike) -> Path:
        """Write ``scorecheck.csv`` (one row per x), ``scorecheck.png``, ``scorecheck.json``
        and ``manifest.json`` last, as a set (:func:`weakgrad.io.staged_outputs`: after a
        failure ``out`` holds the previous outputs unchanged); returns the CSV's path."""
        from weakgrad.io import staged_outputs, write_csv, write_json
        from weakgrad.plots import plot_score_vs_quadrature, save_figure

        out = Path(out)
        with staged_outputs(out, command="scorecheck") as d:
            write_csv(d / "scorecheck.csv", self.header(), self.rows())
            title = "gradient of the Gaussian-smoothed toy loss: Monte Carlo vs quadrature"
            save_figure(plot_score_vs_quadrature(self, title=title), d / "scorecheck.png")
            write_json(d / "scorecheck.json", self.as_dict())
        return out / "scorecheck.csv"


def check_scorecheck(
    *, sigma: float, samples: Sequence[int], seed: int, points: int, x: np.ndarray | None = None
) -> None:
    """The checks of :func:`score_vs_quadrature`'s arguments, callable before any work: raise
    :class:`~weakgrad.errors.ConfigError` naming the option (``--sigma``, ``--samples``,
    ``--points``, ``--seed``)."""
    finite("--sigma", sigma)
    check_seed(seed)
    if not sigma > 0:
        raise ConfigError(f"--sigma must be > 0, got {sigma}.")
    if not samples or any(int(s) < 2 for s in samples):
        raise ConfigError(f"--samples must list ints >= 2, got {list(samples)}.")
    if x is None and points < 3:
        raise ConfigError(f"--points must be >= 3, got {points}.")
    if x is None:
        at_most("--points", points, MAX_POINTS, "use fewer points")
    size = (points if x is None else np.size(x)) * max(int(s) for s in samples)
    if size > MAX_DRAWS:
        raise ConfigError(
            f"--samples x --points = {size:,} draws, above the limit of {MAX_DRAWS:,} (they "
            "are held in memory at once); use fewer samples or points."
        )


def score_vs_quadrature(
    f: Callable[[np.ndarray], np.ndarray] = toy_loss,
    *,
    x: np.ndarray | None = None,
    sigma: float = 1.0,
    samples: Sequence[int] = (100, 1000),
    seed: int = 0,
    points: int = 201,
) -> ScoreVsQuadrature:
    """Both estimates of the smoothed gradient (sigma in x units) at every ``x`` (default:
    ``points`` points on [-10, 10]) for each sample count; Monte Carlo draws fresh samples
    at every ``x``. Bad values raise :class:`~weakgrad.errors.ConfigError`."""
    check_scorecheck(sigma=sigma, samples=samples, seed=seed, points=points, x=x)
    x = np.linspace(-10, 10, points) if x is None else np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
        mc = {int(s): _mc(f, x, sigma, int(s), rng) for s in samples}
        quad = {int(s): _quadrature(f, x, sigma, int(s)) for s in samples}
        reference = _reference(f, x, sigma)
    if not all(np.all(np.isfinite(v)) for v in [reference, *mc.values(), *quad.values()]):
        raise ConfigError(
            f"--sigma {sigma} overflows the smoothed loss (non-finite gradients); use a "
            "smaller --sigma (the loss lives on [-10, 10])."
        )
    return ScoreVsQuadrature(x, f(x), reference, mc, quad, float(sigma), seed)
