"""Gradient descent on a sampled loss curve (study 000, "Gradient Descent on This
Landscape"): the slope comes from the samples, never from the model.

Slope rules are objects: :class:`CentralSlope` (centered finite difference of the two
neighbours) and :class:`RegressionSlope` (least-squares line through ``k`` neighbours on each
side). Descent on the mollified curve is :class:`CentralSlope` on
:func:`weakgrad.analysis.mollify.mollify_curve`'s output. After each step ``w`` is rounded to the
nearest grid point and kept inside the grid; the learning rate may grow geometrically
(``growth`` > 1), as in the study's converging runs.

:func:`descend_study` is what ``weakgrad descend`` runs: the single-neuron curve (computed or
read), the chosen slope rule, the path and its outcome, as a result that saves itself.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import equinox as eqx
import numpy as np

from weakgrad.analysis._checks import at_most, finite
from weakgrad.analysis._checks import seed as check_seed
from weakgrad.errors import ConfigError
from weakgrad.io import write_csv

if TYPE_CHECKING:
    from weakgrad.analysis.landscape import Landscape1D
    from weakgrad.analysis.mollify import Mollified

__all__ = [
    "read_curve",
    "CentralSlope",
    "RegressionSlope",
    "DescentPath",
    "grid_descent",
    "DescendSettings",
    "DescendStudy",
    "descend_study",
]


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
        """Distinct grid points visited in the last ``n`` steps: 1 = stopped, 2 =
        oscillating between two points, more = still moving."""
        return int(np.unique(self.w[-n:]).size)

    def stop_reason(self, n: int = 10) -> str:
        """Why the path ends as it does, from its last ``n`` steps: ``"zero slope"`` (stopped
        where the slope read from the samples is exactly 0), ``"rounded to no move"``
        (stopped although the slope is not 0: every step ``eta x slope`` rounded back to the
        same grid point), ``"two-point oscillation"`` or ``"still moving"``."""
        distinct = self.distinct_tail(n)
        if distinct == 1:
            return "zero slope" if self.slope[-1] == 0 else "rounded to no move"
        return "two-point oscillation" if distinct == 2 else "still moving"

    def describe(self, n: int = 10) -> str:
        """:meth:`stop_reason` with its numbers (the slope and the step it asked for)."""
        reason = self.stop_reason(n)
        if reason == "rounded to no move":
            step = float(self.eta[-1] * self.slope[-1])
            return (
                f"stopped at w = {self.w[-1]:.4g}: rounded to no move (slope "
                f"{self.slope[-1]:.3g}, step {step:.3g} rounds back to the same grid point)"
            )
        if reason == "zero slope":
            return f"stopped at w = {self.w[-1]:.4g}: zero slope"
        if reason == "two-point oscillation":
            pts = np.unique(self.w[-n:])
            return f"two-point oscillation between w = {pts[0]:.4g} and {pts[1]:.4g}"
        return f"still moving (w = {self.w[-1]:.4g}, slope {self.slope[-1]:.3g})"


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


DESCEND_METHODS = ("fd", "regression", "mollified")
MAX_STEPS = 1_000_000  # descent steps (a step is cheap; more is a typo, and CSV rows)
# The computed curve: the single neuron's input weight on [0, 3], dt = 0.01 ms.
_GRID = (0.0, 3.0)
_DT_MS = 0.01


def read_curve(path: str | os.PathLike, flag: str = "--landscape") -> Landscape1D:
    """A ``landscape.csv`` as :class:`~weakgrad.analysis.landscape.Landscape1D`, checked: at
    least 3 rows, the columns ``weakgrad landscape`` writes, finite values, increasing ``w``.
    Anything else raises :class:`~weakgrad.errors.ConfigError` naming the file."""
    from weakgrad.analysis.landscape import Landscape1D

    fix = f"pass a landscape.csv written by weakgrad landscape (or leave {flag} out)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # genfromtxt warns on empty files
            curve = Landscape1D.from_csv(path)
    except FileNotFoundError:
        raise ConfigError(
            f"{flag} {path} does not exist; run weakgrad landscape (or leave {flag} out)."
        ) from None
    except (ValueError, IndexError, UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"{flag} {path} is not a landscape CSV ({e}); {fix}.") from None
    w, loss = np.atleast_1d(curve.w), np.atleast_1d(curve.loss_mean)
    if w.size < 3:
        raise ConfigError(
            f"{flag} {path} holds {w.size} data row{'s' if w.size != 1 else ''} (at least 3 "
            f"are needed to read slopes); {fix}."
        )
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(loss))):
        raise ConfigError(
            f"{flag} {path} holds non-finite w or loss_mean values; resample the curve."
        )
    if np.any(np.diff(w) <= 0):
        raise ConfigError(f"{flag} {path}: w must increase from row to row; {fix}.")
    return curve


@dataclasses.dataclass(frozen=True)
class DescendSettings:
    """What ``weakgrad descend`` runs.

    Attributes:
        method: "fd" (centered finite differences), "regression" (least-squares line through
            ``neighbours`` points on each side) or "mollified" (finite differences of the
            curve mollified by a bump of half-width ``width``, w units).
        eta: learning rate (w units per unit slope); growth: its factor per step.
        w0: starting weight; steps: descent steps.
        landscape: a ``landscape.csv`` to descend; None: compute the single-neuron curve on
            ``points`` points of [0, 3] with ``tau_ms`` ms per point (noise-free, ``seed``).

    Bad values raise :class:`~weakgrad.errors.ConfigError` naming the command-line option.
    """

    method: str = "fd"
    eta: float = 0.1
    w0: float = 1.5
    steps: int = 50
    growth: float = 1.0
    neighbours: int = 10
    width: float = 0.1
    landscape: Path | None = None
    points: int = 301
    tau_ms: float = 1000.0
    seed: int = 0

    def __post_init__(self):
        for flag, value in [
            ("--eta", self.eta), ("--w0", self.w0), ("--growth", self.growth),
            ("--width", self.width), ("--tau-ms", self.tau_ms),
        ]:  # fmt: skip
            finite(flag, value)
        check_seed(self.seed)
        checks = [
            (
                self.method in DESCEND_METHODS,
                f"--method must be one of {', '.join(DESCEND_METHODS)}, got {self.method!r}.",
            ),
            (
                self.eta > 0 and self.growth > 0,
                f"--eta and --growth must be > 0, got {self.eta} and {self.growth}.",
            ),
            (self.steps >= 1, f"--steps must be >= 1, got {self.steps}."),
            (self.points >= 3, f"--points must be >= 3, got {self.points}."),
            (self.neighbours >= 1, f"--neighbours must be >= 1, got {self.neighbours}."),
            (self.width > 0, f"--width must be a positive half-width, got {self.width}."),
            (self.tau_ms > 0, f"--tau-ms must be > 0, got {self.tau_ms}; try 1000."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        at_most("--steps", self.steps, MAX_STEPS, "descend in fewer steps")
        if math.log(self.eta) + self.steps * math.log(self.growth) > 700:
            raise ConfigError(
                f"--eta {self.eta} x --growth {self.growth} ^ --steps {self.steps} overflows; "
                "use fewer steps or a smaller growth."
            )
        if self.landscape is None:
            self.sweep_settings()  # validates --points and --tau-ms for the sweep
            lo, hi = _GRID
            spacing = (hi - lo) / (self.points - 1)
        else:
            w = np.asarray(read_curve(self.landscape).w, np.float64)
            lo, hi = float(w[0]), float(w[-1])
            spacing = float(np.diff(w).mean())
        if not lo <= self.w0 <= hi:
            raise ConfigError(f"--w0 {self.w0} lies outside the curve's range [{lo:g}, {hi:g}].")
        if self.method == "mollified":
            if self.width < spacing:
                raise ConfigError(
                    f"--width {self.width} is below the curve's grid spacing {spacing:.4g}: it "
                    "would not smooth anything; use a wider bump."
                )
            if self.width > (hi - lo) / 2:
                raise ConfigError(
                    f"--width {self.width} is wider than half the curve's range [{lo:g}, "
                    f"{hi:g}]: no point would be free of border effects; use --width <= "
                    f"{(hi - lo) / 2:.4g}."
                )

    def sweep_settings(self):
        """The :class:`~weakgrad.analysis.landscape.LandscapeSettings` of the computed curve
        (noise-free single neuron on ``points`` points of [0, 3], ``tau_ms`` per point)."""
        from weakgrad.analysis.landscape import LandscapeSettings

        lo, hi = _GRID
        return LandscapeSettings(
            points=self.points, tau_ms=self.tau_ms, seed=self.seed, w_min=lo, w_max=hi,
            dt_ms=_DT_MS,
        )  # fmt: skip

    def slope(self) -> AbstractSlope:
        return RegressionSlope(self.neighbours) if self.method == "regression" else CentralSlope()


@dataclasses.dataclass(frozen=True)
class DescendStudy:
    """Result of :func:`descend_study`: the curve, its mollified version (method
    "mollified"), and the path descended on it."""

    settings: DescendSettings
    curve: Landscape1D
    mollified: Mollified | None
    path: DescentPath

    @property
    def outcome(self) -> str:
        """What the last 10 steps did (:meth:`DescentPath.stop_reason`): zero slope, rounded
        to no move, two-point oscillation or still moving."""
        return self.path.stop_reason()

    def as_dict(self, out: str | os.PathLike) -> dict[str, Any]:
        """``descend.json``: settings, where the curve came from, end point and outcome."""
        s, p = self.settings, self.path
        source = s.landscape if s.landscape is not None else Path(out) / "landscape.csv"
        return {
            "method": s.method, "eta": s.eta, "w0": s.w0, "steps": s.steps, "growth": s.growth,
            "neighbours": s.neighbours if s.method == "regression" else None,
            "width": s.width if s.method == "mollified" else None,
            "landscape": str(source), "final_w": float(p.w[-1]), "final_loss": float(p.loss[-1]),
            "distinct_points_last_10_steps": p.distinct_tail(), "outcome": self.outcome,
            "outcome_detail": p.describe(),
        }  # fmt: skip

    def summary(self) -> str:
        p = self.path
        return (
            f"w {p.w[0]:g} -> {p.w[-1]:g}, loss {p.loss[0]:.4g} -> {p.loss[-1]:.4g}; "
            f"last 10 steps: {p.describe()}"
        )

    def save(self, out: str | os.PathLike) -> Path:
        """Write ``path.csv``, ``path.png``, ``descend.json``, the computed curve as
        ``landscape.csv`` and the mollified one as ``mollified.csv``, and ``manifest.json``
        last, as a set (:func:`weakgrad.io.staged_outputs`: after a failure ``out`` holds
        the previous outputs unchanged); returns ``path.csv``."""
        from weakgrad.io import staged_outputs, write_json
        from weakgrad.plots import plot_descent, save_figure

        out, s, m = Path(out), self.settings, self.mollified
        w, loss = np.asarray(self.curve.w), np.asarray(self.curve.loss_mean)
        with staged_outputs(out, command="descend") as d:
            if s.landscape is None:
                self.curve.to_csv(d / "landscape.csv")
            self.path.to_csv(d / "path.csv")
            if m is not None:
                write_csv(
                    d / "mollified.csv",
                    ["w", "loss", "mollified", "valid"],
                    (
                        [float(a), float(b), float(c), bool(v)]
                        for a, b, c, v in zip(w, loss, m.y, m.valid, strict=True)
                    ),
                )
            growth = f" x {s.growth:g}/step" if s.growth != 1 else ""
            title = f"{s.method}: eta={s.eta:g}{growth}, w0={s.w0:g}"
            fig = plot_descent(w, loss, self.path, smooth=None if m is None else m.y, title=title)
            save_figure(fig, d / "path.png")
            write_json(d / "descend.json", self.as_dict(out))
        return out / "path.csv"


def descend_study(
    settings: DescendSettings, *, progress: Callable[[int], None] | None = None
) -> DescendStudy:
    """Descend the single-neuron curve as ``settings`` say; ``progress`` is called with the
    number of curve points computed (nothing when the curve is read from a file)."""
    from weakgrad.analysis.landscape import landscape_study
    from weakgrad.analysis.mollify import BumpKernel, mollify_curve

    s = settings  # validated on construction: the range, w0 and width fit the curve
    if s.landscape is not None:
        curve = read_curve(s.landscape)
    else:
        curve = landscape_study(s.sweep_settings(), progress=progress).curve
    w, loss = np.asarray(curve.w), np.asarray(curve.loss_mean)
    smooth = None
    if s.method == "mollified":
        smooth = mollify_curve(w, loss, BumpKernel(s.width))
    target = loss if smooth is None else smooth.y
    path = grid_descent(
        w, target, w0=s.w0, eta=s.eta, steps=s.steps, slope=s.slope(), growth=s.growth
    )
    return DescendStudy(s, curve, smooth, path)
