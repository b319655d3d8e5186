"""Mollification of sampled curves and traces (study 000, "Mollification").

A kernel is an object: :class:`BumpKernel` (the study's compactly supported bump, a true
mollifier) or :class:`GaussianKernel` (a blur without compact support, truncated at 4 sigma).
:func:`mollify_curve` convolves samples on a uniform grid with a kernel. At the borders the
kernel would need "ghost points" that do not exist; there the convolution uses only the
points inside and renormalises the kernel's weights, and the result marks which points had
the kernel's whole support inside (``valid``), so a user can trust or trim the borders.
:func:`mollify_trace` applies it along the time axis of voltage traces, repeatedly if asked
(the study's voltage figures).
"""

from __future__ import annotations

import abc
import dataclasses
import math

import equinox as eqx
import numpy as np

from weakgrad.analysis.bump import bump

__all__ = ["BumpKernel", "GaussianKernel", "Mollified", "mollify_curve", "mollify_trace"]


class AbstractKernel(eqx.Module):
    @property
    @abc.abstractmethod
    def radius(self) -> float:
        """Half-width of the support used (x units)."""

    @abc.abstractmethod
    def weights(self, offsets: np.ndarray) -> np.ndarray:
        """Kernel density at the given offsets (x units), for 1-D curves."""


class BumpKernel(AbstractKernel):
    """``phi_width(x) = width^-1 k_1 exp(1/((x/width)^2 - 1))`` on ``|x| < width``."""

    width: float

    def __check_init__(self):
        if not (isinstance(self.width, int | float) and self.width > 0):
            raise ValueError(f"BumpKernel.width must be > 0 (x units), got {self.width!r}.")

    @property
    def radius(self) -> float:
        return float(self.width)

    def weights(self, offsets: np.ndarray) -> np.ndarray:
        return np.asarray(bump(np.asarray(offsets, np.float64)[:, None], self.width), np.float64)


class GaussianKernel(AbstractKernel):
    """A normal density of standard deviation ``sigma``, truncated at ``4 sigma``."""

    sigma: float

    def __check_init__(self):
        if not (isinstance(self.sigma, int | float) and self.sigma > 0):
            raise ValueError(f"GaussianKernel.sigma must be > 0 (x units), got {self.sigma!r}.")

    @property
    def radius(self) -> float:
        return 4.0 * float(self.sigma)

    def weights(self, offsets: np.ndarray) -> np.ndarray:
        z = np.asarray(offsets, np.float64) / self.sigma
        return np.exp(-0.5 * z * z) / (self.sigma * math.sqrt(2 * math.pi))


@dataclasses.dataclass(frozen=True)
class Mollified:
    """A mollified curve on the input grid.

    Attributes:
        x: the grid.
        y: the mollified values.
        valid: True where the kernel's whole support lies inside the grid (no border effect).
    """

    x: np.ndarray
    y: np.ndarray
    valid: np.ndarray


def _stencil(kernel: AbstractKernel, dx: float) -> np.ndarray:
    half = int(math.floor(kernel.radius / dx))
    if half < 1:
        raise ValueError(
            f"kernel radius {kernel.radius:g} is below the grid spacing {dx:g}: it would not "
            "smooth anything; use a wider kernel or a finer grid."
        )
    offsets = np.arange(-half, half + 1) * dx
    return kernel.weights(offsets) * dx  # quadrature weights (midpoint rule)


def mollify_curve(x: np.ndarray, y: np.ndarray, kernel: AbstractKernel) -> Mollified:
    """Convolve samples ``y`` on the uniform grid ``x`` with ``kernel``.

    Near the borders only points inside the grid are used and the kernel's weights are
    renormalised to sum to one (an average of what is known, never invented values);
    ``valid`` marks the points not affected.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 1 or y.shape[:1] != x.shape or x.size < 3:
        raise ValueError(
            f"x must be a 1-D grid of >= 3 points and y match it, got {x.shape}, {y.shape}."
        )
    dx = float(np.diff(x).mean())
    if not np.allclose(np.diff(x), dx, rtol=1e-6, atol=1e-12) or dx <= 0:
        raise ValueError("mollify_curve needs an increasing uniform grid x.")
    w = _stencil(kernel, dx)
    half = (w.size - 1) // 2
    if w.size > x.size:
        raise ValueError(
            f"kernel radius {kernel.radius:g} is wider than half the grid "
            f"({(x[-1] - x[0]) / 2:g}): no point would be free of border effects; use a "
            "narrower kernel or a wider grid."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("y holds non-finite values; mollify only finite samples.")
    flat = y.reshape(y.shape[0], -1)
    num = np.stack([np.convolve(col, w[::-1], mode="same") for col in flat.T], axis=1)
    mass = np.convolve(np.ones(x.size), w[::-1], mode="same")
    out = (num / mass[:, None]).reshape(y.shape)
    valid = np.zeros(x.size, bool)
    valid[half : x.size - half] = True
    return Mollified(x, out, valid)


def mollify_trace(
    trace: np.ndarray, dt: float, kernel: AbstractKernel, *, times: int = 1
) -> Mollified:
    """Mollify ``trace`` (time along axis 0, e.g. ``(steps, neurons)`` voltages in mV) with a
    kernel in ms, ``times`` times in a row. Each pass widens the border region by one
    kernel radius; ``valid`` excludes all of it."""
    if not (isinstance(times, int) and times >= 1):
        raise ValueError(f"times must be an int >= 1, got {times!r}.")
    t = np.arange(np.shape(trace)[0]) * dt
    y = np.asarray(trace, np.float64)
    valid = np.ones(t.size, bool)
    for k in range(times):
        step = mollify_curve(t, y, kernel)
        y = step.y
        half = int(np.sum(~step.valid) // 2)
        valid[: half * (k + 1)] = False
        valid[t.size - half * (k + 1) :] = False
    return Mollified(t, y, valid)
