"""Gradient descent on a sampled loss curve (study 000, "Gradient Descent on This
Landscape"): the slope comes from the samples, never from the model.

Slope rules are objects: :class:`CentralSlope` (centered finite difference of the two
neighbours) and :class:`RegressionSlope` (least-squares line through ``k`` neighbours on each
side). Descent on the mollified curve is :class:`CentralSlope` on
:func:`weakgrad.analysis.mollify.mollify_curve`'s output. After each step ``w`` is rounded to the
nearest grid point and kept inside the grid; the learning rate may grow geometrically
(``growth`` > 1), as in the study's converging runs.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from pathlib import Path

import equinox as eqx
import numpy as np

from weakgrad.io import write_csv

__all__ = ["CentralSlope", "RegressionSlope", "DescentPath", "grid_descent"]


class AbstractSlope(eqx.Module):
    @abc.abstractmethod
    def __call__(self, w: np.ndarray, loss: np.ndarray, i: int) -> float:
        """Slope of the sampled curve at grid index ``i``."""


class CentralSlope(AbstractSlope):
    """``(L[i+1] - L[i-1]) / (w[i+1] - w[i-1])``; one-sided at the ends."""

    def __call__(self, w: np.ndarray, loss: np.ndarray, i: int) -> float:
        lo, hi = max(i - 1, 0), min(i + 1, len(w) - 1)
        return float((loss[hi] - loss[lo]) / (w[hi] - w[lo]))


class RegressionSlope(AbstractSlope):
    """Least-squares slope over the ``neighbours`` points on each side (and the point)."""

    neighbours: int = 10

    def __check_init__(self):
        if not (isinstance(self.neighbours, int) and self.neighbours >= 1):
            raise ValueError(
                f"RegressionSlope.neighbours must be an int >= 1, got {self.neighbours!r}."
            )

    def __call__(self, w: np.ndarray, loss: np.ndarray, i: int) -> float:
        lo, hi = max(i - self.neighbours, 0), min(i + self.neighbours + 1, len(w))
        x, y = w[lo:hi], loss[lo:hi]
        xc = x - x.mean()
        return float(xc @ (y - y.mean()) / (xc @ xc))


@dataclasses.dataclass(frozen=True)
class DescentPath:
    """One descent: per step the grid point, its loss, the slope used and the learning rate
    (row ``k`` is the state before step ``k``; the last row is the final point)."""

    step: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    slope: np.ndarray
    eta: np.ndarray

    def to_csv(self, path: str | os.PathLike) -> Path:
        rows = zip(self.step.tolist(), self.w, self.loss, self.slope, self.eta, strict=True)
        return write_csv(
            path,
            ["step", "w", "loss", "slope", "eta"],
            ([a, float(b), float(c), float(d), float(e)] for a, b, c, d, e in rows),
        )

    def distinct_tail(self, n: int = 10) -> int:
        """Distinct grid points visited in the last ``n`` steps: 1 = stopped (flat slope),
        2 = oscillating between two points, more = still moving."""
        return int(np.unique(self.w[-n:]).size)


def grid_descent(
    w: np.ndarray,
    loss: np.ndarray,
    *,
    w0: float,
    eta: float,
    steps: int,
    slope: AbstractSlope = CentralSlope(),
    growth: float = 1.0,
) -> DescentPath:
    """Descend the sampled curve ``loss(w)`` from the grid point nearest ``w0``.

    Args:
        w, loss: the curve, on an increasing grid.
        w0: starting weight; eta: learning rate; steps: number of steps.
        slope: how the slope is read from the samples.
        growth: the learning rate is multiplied by this after every step.
    """
    w = np.asarray(w, np.float64)
    loss = np.asarray(loss, np.float64)
    if w.ndim != 1 or loss.shape != w.shape or w.size < 3 or np.any(np.diff(w) <= 0):
        raise ValueError(
            "grid_descent needs an increasing grid w of >= 3 points and loss of its shape."
        )
    if not np.all(np.isfinite(loss)):
        raise ValueError("the loss curve holds non-finite values; resample it.")
    if not w[0] <= w0 <= w[-1]:
        raise ValueError(f"w0={w0} lies outside the grid [{w[0]}, {w[-1]}].")
    if not eta > 0 or not growth > 0:
        raise ValueError(f"eta and growth must be > 0, got eta={eta}, growth={growth}.")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}.")
    i = int(np.argmin(np.abs(w - w0)))
    rows = []
    lr = eta
    for k in range(steps):
        g = slope(w, loss, i)
        rows.append((k, w[i], loss[i], g, lr))
        target = w[i] - lr * g
        i = int(np.argmin(np.abs(w - np.clip(target, w[0], w[-1]))))
        lr *= growth
    rows.append((steps, w[i], loss[i], slope(w, loss, i), lr))
    cols = list(zip(*rows, strict=True))
    return DescentPath(*(np.asarray(c) for c in cols))
