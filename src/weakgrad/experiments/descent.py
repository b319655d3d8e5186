"""Study 000, "Gradient Descent on This Landscape": descent on the sampled single-neuron
curve with centered finite differences (eta 0.1 and 0.2) and with a regression slope over
10 neighbours and a growing learning rate. The curve is
:meth:`weakgrad.analysis.descend.DescendSettings.sweep_settings`'s (what ``weakgrad descend``
descends), the paths :func:`weakgrad.analysis.descend.grid_descent`'s."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import (
    AbstractExperiment,
    ExperimentResult,
    ExperimentSettings,
    swept_curve,
)
from weakgrad.experiments.claims import Claim, Verdict, low_loss_level

__all__ = [
    "DescentGrid",
    "DescentGridSettings",
    "check_smoothed_beat_fd",
    "DescentSettings",
    "FdDescent",
    "RegressionDescent",
    "RegressionTangent",
    "TangentSettings",
    "check_tangent_clear",
    "check_fd_two_values",
    "check_fd_zero_slope",
    "check_regression_converges",
]

SECTION = "Gradient Descent on This Landscape"


@dataclasses.dataclass(frozen=True)
class DescentSettings(ExperimentSettings):
    """The noise-free single-neuron curve on ``points`` points of [0, 3] (``tau_ms`` per
    point), descended from ``w0`` for ``steps`` steps at each learning rate of ``etas``,
    multiplied by ``growth`` per step; ``neighbours`` per side for the regression slope."""

    tau_ms: float = 1000.0
    points: int = 301
    w0: float = 1.5
    steps: int = 50
    etas: tuple[float, ...] = (0.1, 0.2)
    growth: float = 1.0
    neighbours: int = 10


def _curve(s: DescentSettings, method: str, progress, *, width: float = 0.1):
    """The curve ``weakgrad descend`` would descend; swept once per process for both
    experiments (same settings, same curve)."""
    from weakgrad.analysis.descend import DescendSettings

    d = DescendSettings(
        method=method, eta=s.etas[0], w0=s.w0, steps=s.steps, growth=s.growth,
        neighbours=s.neighbours, width=width, points=s.points, tau_ms=s.tau_ms, seed=s.seed,
    )  # fmt: skip
    return d, swept_curve(d.sweep_settings())


def _paths(s: DescentSettings, method: str, progress):
    from weakgrad.analysis.descend import grid_descent

    d, curve = _curve(s, method, progress)
    w, loss = np.asarray(curve.w), np.asarray(curve.loss_mean)
    paths = {
        eta: grid_descent(
            w, loss, w0=s.w0, eta=eta, steps=s.steps, slope=d.slope(), growth=s.growth
        )
        for eta in s.etas
    }
    return curve, paths


def _path_data(curve, paths) -> dict[str, Any]:
    data: dict[str, Any] = {"w": np.asarray(curve.w), "loss": np.asarray(curve.loss_mean)}
    for eta, p in paths.items():
        data[f"eta={eta:g}"] = {
            "w": np.asarray(p.w), "loss": np.asarray(p.loss), "slope": np.asarray(p.slope),
            "distinct_tail": p.distinct_tail(),
        }  # fmt: skip
    return data


def check_fd_two_values(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """At eta 0.1: the last 10 steps visit exactly 2 grid points (reproduced); 1 point:
    stuck but not jumping (partly); more: still moving (not reproduced)."""
    p = data["eta=0.1"]
    n = int(p["distinct_tail"])
    points = f"{n} grid point{'s' if n != 1 else ''}"
    measured = f"last 10 steps visit {points}, ending at w = {p['w'][-1]:.4g}"
    verdict = Verdict.REPRODUCED if n == 2 else Verdict.PARTLY if n == 1 else Verdict.NOT_REPRODUCED
    return verdict, measured


def check_fd_zero_slope(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """At eta 0.2: the path stops (1 grid point in the last 10 steps) on an exactly zero
    finite difference (reproduced); stuck (<= 2 points) on a non-zero one: partly."""
    p = data["eta=0.2"]
    n, slope = int(p["distinct_tail"]), float(p["slope"][-1])
    measured = (
        f"last 10 steps visit {n} grid point{'s' if n != 1 else ''}, final w = "
        f"{p['w'][-1]:.4g}, finite difference there {slope:.3g}"
    )
    if n == 1 and slope == 0.0:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if n <= 2 else Verdict.NOT_REPRODUCED), measured


def check_regression_converges(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The regression path ends in the low-loss region (loss within the lowest 10% of the
    curve's range): reproduced; lower than where it started but not there: partly."""
    (key,) = [k for k in data if k.startswith("eta=")]
    p = data[key]
    level = low_loss_level(data["loss"])
    start, end = float(p["loss"][0]), float(p["loss"][-1])
    measured = (
        f"loss {start:.4g} at w = {p['w'][0]:.4g} -> {end:.4g} at w = {p['w'][-1]:.4g}; "
        f"low-loss region: loss <= {level:.4g}"
    )
    if end <= level:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if end < start else Verdict.NOT_REPRODUCED), measured


FD_TWO_VALUES = Claim(
    id="fd-eta-0.1-jumps-between-two-values",
    section=SECTION,
    claim="With initial w = 1.5 and eta = 0.1, finite-difference descent gets stuck because "
    "it keeps jumping between two values.",
    measures="distinct grid points in the last 10 steps: 2 reproduced, 1 partly (stuck, not "
    "jumping), more not reproduced.",
    check=check_fd_two_values,
)
FD_ZERO = Claim(
    id="fd-eta-0.2-zero-gradient",
    section=SECTION,
    claim="With eta = 0.2, one of the approximate gradients is simply 0 (the curve is flat "
    "at this point), so it gets stuck again.",
    measures="the path stops on one grid point whose centered difference is exactly 0: "
    "reproduced; stuck (<= 2 points) on a non-zero one: partly.",
    check=check_fd_zero_slope,
)
REGRESSION = Claim(
    id="regression-descent-converges",
    section=SECTION,
    claim="With a learning rate that grows over learning and the linear-regression slope "
    "over 10 local neighbours, we get convergence.",
    measures="the final loss lies in the low-loss region (lowest 10% of the curve's loss "
    "range): reproduced; lower than the start but above it: partly.",
    check=check_regression_converges,
)


@dataclasses.dataclass(frozen=True)
class _DescentResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: DescentSettings
    data: Mapping[str, Any]
    curve: Any  # Landscape1D
    paths: Mapping[float, Any]  # eta -> DescentPath

    def write_data(self, folder: Path) -> None:
        self.curve.to_csv(folder / "landscape.csv")
        for eta, p in self.paths.items():
            p.to_csv(folder / f"path_eta_{eta:g}.csv")

    def figures(self) -> dict[str, Any]:
        from weakgrad.plots import plot_descent

        s, name = self.settings, self.experiment.name
        w, loss = np.asarray(self.curve.w), np.asarray(self.curve.loss_mean)
        growth = f" x {s.growth:g}/step" if s.growth != 1 else ""
        rule = "finite differences"
        if name != "fd-descent":
            rule = f"regression, {s.neighbours} neighbours"
        return {
            f"path_eta_{eta:g}": plot_descent(
                w, loss, p, title=f"{rule}: eta = {eta:g}{growth}, w0 = {s.w0:g}"
            )
            for eta, p in self.paths.items()
        }


class FdDescent(AbstractExperiment):
    """Centered finite-difference descent on the sampled curve from w = 1.5, eta 0.1 and
    0.2 (the study's two runs)."""

    name = "fd-descent"
    title = "Finite-difference descent, eta 0.1 and 0.2"
    section = SECTION
    claims = (FD_TWO_VALUES, FD_ZERO)

    def quick(self) -> DescentSettings:
        return DescentSettings(tau_ms=200.0, points=301)

    def full(self) -> DescentSettings:
        return DescentSettings(tau_ms=1000.0, points=301)

    def tiny(self) -> DescentSettings:
        return DescentSettings(tau_ms=10.0, points=7, steps=5)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _DescentResult:
        curve, paths = _paths(settings, "fd", progress)
        return _DescentResult(self, settings, _path_data(curve, paths), curve, paths)


class RegressionDescent(AbstractExperiment):
    """Descent with the least-squares slope over 10 neighbours on each side and a learning
    rate growing by 10% a step (the study gives no factor; 1.1 is weakgrad's choice)."""

    name = "regression-descent"
    title = "Regression descent, 10 neighbours, growing learning rate"
    section = SECTION
    claims = (REGRESSION,)

    def quick(self) -> DescentSettings:
        return DescentSettings(tau_ms=200.0, points=301, etas=(0.1,), growth=1.1)

    def full(self) -> DescentSettings:
        return DescentSettings(tau_ms=1000.0, points=301, etas=(0.1,), growth=1.1)

    def tiny(self) -> DescentSettings:
        return DescentSettings(tau_ms=10.0, points=7, steps=5, etas=(0.1,), growth=1.1)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _DescentResult:
        curve, paths = _paths(settings, "regression", progress)
        return _DescentResult(self, settings, _path_data(curve, paths), curve, paths)


# --- the local-regression tangent (the study's illustration, 5 neighbours) ----------------


@dataclasses.dataclass(frozen=True)
class TangentSettings(DescentSettings):
    """:class:`DescentSettings` with ``neighbours`` = 5 per side (the study's illustration)
    and ``width``, the half-width of the bump whose mollified curve gives the reference
    (large-scale) slope; the figure shows the fit at ``w0``."""

    neighbours: int = 5
    width: float = 0.1


def check_tangent_clear(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """At every point free of border effects: is the regression slope closer to the
    mollified curve's slope than the centered finite difference is? At >= 80% of the
    points: reproduced; >= 50%: partly."""
    ref, reg, fd = (np.asarray(data[k], np.float64) for k in ("reference", "regression", "fd"))
    closer = np.abs(reg - ref) < np.abs(fd - ref)
    frac = float(closer.mean()) if closer.size else 0.0
    measured = (
        f"regression slope closer to the mollified curve's slope than the finite difference "
        f"at {int(closer.sum())} of {closer.size} points ({100 * frac:.0f}%); median error "
        f"{np.median(np.abs(reg - ref)):.3g} vs {np.median(np.abs(fd - ref)):.3g}"
    )
    verdict = (
        Verdict.REPRODUCED if frac >= 0.8 else Verdict.PARTLY if frac >= 0.5
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, measured


TANGENT = Claim(
    id="regression-tangent-clear",
    section=SECTION,
    claim="At the micro scale there is a lot of noise in the curve even though it possesses "
    "a tangent that is quite clear without the noise: a linear regression through 5 "
    "neighbours on each side approximates that tangent.",
    measures="at each point away from the borders, |regression slope - mollified slope| < "
    "|centered difference - mollified slope| (bump half-width 0.1); reproduced at >= 80% of "
    "the points, partly >= 50%.",
    check=check_tangent_clear,
)


@dataclasses.dataclass(frozen=True)
class _TangentResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: TangentSettings
    data: Mapping[str, Any]
    curve: Any  # Landscape1D

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv

        cols = [self.data[k] for k in ("w_valid", "reference", "regression", "fd")]
        write_csv(
            folder / "slopes.csv",
            ["w", "mollified_slope", "regression_slope", "fd_slope"],
            ([float(v) for v in row] for row in zip(*cols, strict=True)),
        )
        self.curve.to_csv(folder / "landscape.csv")

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        from weakgrad.analysis.descend import CentralSlope, RegressionSlope

        s = self.settings
        w, loss = np.asarray(self.curve.w), np.asarray(self.curve.loss_mean)
        i = int(np.argmin(np.abs(w - s.w0)))
        k = s.neighbours
        lo, hi = max(i - 3 * k, 0), min(i + 3 * k + 1, w.size)
        fit = slice(max(i - k, 0), min(i + k + 1, w.size))
        reg = RegressionSlope(k)(w, loss, i)
        fd = CentralSlope()(w, loss, i)
        xs = w[lo:hi]
        centre = loss[fit].mean() + reg * (w[i] - w[fit].mean())
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(xs, loss[lo:hi], color="tab:blue", lw=0.8, marker=".", ms=3, label="sampled loss")
        ax.plot(w[fit], loss[fit], color="tab:orange", ls="none", marker="o", ms=5,
                label=f"{k} neighbours each side")  # fmt: skip
        ax.plot(xs, centre + reg * (xs - w[i]), color="tab:green", lw=1.5,
                label=f"regression line, slope {reg:.3g}")  # fmt: skip
        ax.plot(xs, loss[i] + fd * (xs - w[i]), color="tab:red", lw=1.0, ls="--",
                label=f"centered difference, slope {fd:.3g}")  # fmt: skip
        ax.set_xlabel("input weight w (current = w * 34.6 uA/cm^2)")
        ax.set_ylabel("loss: mean output over tau")
        ax.set_title(f"Local linear regression at w = {w[i]:.3g}")
        ax.set_ylim(loss[lo:hi].min() - 0.2 * np.ptp(loss[lo:hi]),
                    loss[lo:hi].max() + 0.2 * np.ptp(loss[lo:hi]))  # fmt: skip
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        return {"tangent": fig}


class RegressionTangent(AbstractExperiment):
    """The study's illustration of the local-regression tangent (5 neighbours on each
    side), and how well it follows the large-scale slope along the whole curve."""

    name = "regression-tangent"
    title = "Local linear regression tangent, 5 neighbours each side"
    section = SECTION
    claims = (TANGENT,)

    def quick(self) -> TangentSettings:
        return TangentSettings(tau_ms=200.0, points=301)

    def full(self) -> TangentSettings:
        return TangentSettings(tau_ms=1000.0, points=301)

    def tiny(self) -> TangentSettings:
        return TangentSettings(tau_ms=10.0, points=11, width=0.5, neighbours=2)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _TangentResult:
        from weakgrad.analysis.descend import CentralSlope, RegressionSlope
        from weakgrad.analysis.mollify import BumpKernel, mollify_curve

        s = settings
        _, curve = _curve(s, "regression", progress, width=s.width)
        w, loss = np.asarray(curve.w), np.asarray(curve.loss_mean)
        m = mollify_curve(w, loss, BumpKernel(s.width))
        # points whose regression window and mollifier both stay inside the grid
        idx = [i for i in np.flatnonzero(m.valid) if s.neighbours <= i < w.size - s.neighbours]
        reg, fd, central = RegressionSlope(s.neighbours), CentralSlope(), CentralSlope()
        data = {
            "w_valid": w[idx],
            "reference": np.array([central(w, m.y, i) for i in idx]),
            "regression": np.array([reg(w, loss, i) for i in idx]),
            "fd": np.array([fd(w, loss, i) for i in idx]),
        }
        return _TangentResult(self, s, data, curve)


# ---------------------------------------------- the whole grid: method x schedule x curve

GRID_METHODS = ("fd", "regression", "mollified")
SCHEDULES = ("fixed", "growing")


@dataclasses.dataclass(frozen=True)
class DescentGridSettings(ExperimentSettings):
    """Every method (``fd``, ``regression`` over ``neighbours`` per side, ``mollified`` with
    a bump of half-width ``width``) x schedule (eta fixed at ``eta``; growing by ``growth``
    per step) on the 1-trial curve and the ``trials``-trial curve (noise ``noise``
    uA/cm^2 per step), from ``w0`` for ``steps`` steps; curves on ``points`` points of
    [0, 3] with ``tau_ms`` per point at ``dt_ms``."""

    tau_ms: float = 1000.0
    dt_ms: float = 0.01
    points: int = 301
    trials: int = 10
    noise: float = 5.0
    w0: float = 1.5
    eta: float = 0.1
    growth: float = 1.1
    steps: int = 50
    neighbours: int = 10
    width: float = 0.1


def check_smoothed_beat_fd(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Per curve and schedule, a method "beats" finite differences when its final loss is
    lower than fd's by at least 10% of that curve's loss range. Regression and mollified
    both beat fd in every (curve, schedule) cell: reproduced; either beats it in at least
    one cell: partly."""
    cells, wins, parts = 0, [], []
    for curve, by_schedule in data["final_loss"].items():
        span = float(data["loss_range"][curve])
        for schedule, final in by_schedule.items():
            cells += 1
            fd = float(final["fd"])
            beat = {m: fd - float(final[m]) >= 0.1 * span for m in ("regression", "mollified")}
            wins.append(beat)
            parts.append(
                f"{curve}, {schedule}: fd {fd:.3g}, regression {float(final['regression']):.3g}"
                f", mollified {float(final['mollified']):.3g}"
            )
    all_beat = cells > 0 and all(all(b.values()) for b in wins)
    any_beat = any(any(b.values()) for b in wins)
    verdict = (
        Verdict.REPRODUCED if all_beat else Verdict.PARTLY if any_beat
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, "final losses: " + "; ".join(parts)


SMOOTHED_BEAT_FD = Claim(
    id="regression-and-mollification-beat-fd",
    section=SECTION,
    claim="Finite differences get stuck on the sampled landscape (jumping between two values, "
    "or a gradient of exactly 0), while the regression slope and the mollified curve lead "
    "the descent down.",
    measures="final loss after 50 steps from w0 = 1.5, per curve (1 trial; 10 noisy trials) "
    "and schedule (eta 0.1 fixed; growing x1.1 per step): regression and mollified both "
    "below fd by >= 10% of the curve's loss range in every cell: reproduced; either in "
    "one cell: partly.",
    check=check_smoothed_beat_fd,
)


@dataclasses.dataclass(frozen=True)
class _GridResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: DescentGridSettings
    data: Mapping[str, Any]
    curves: Mapping[str, Any]
    paths: Mapping[tuple[str, str, str], Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv

        rows = [
            (curve, method, schedule, float(p.w[0]), float(p.w[-1]), float(p.loss[-1]),
             p.stop_reason(), p.describe())
            for (curve, method, schedule), p in self.paths.items()
        ]  # fmt: skip
        header = ["curve", "method", "schedule", "w0", "final_w", "final_loss", "stop_reason",
                  "detail"]  # fmt: skip
        write_csv(folder / "descent_grid.csv", header, rows)

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        s = self.settings
        curves = list(self.curves)
        fig, axes = plt.subplots(
            len(curves), len(SCHEDULES), figsize=(11, 3.6 * len(curves)), squeeze=False
        )
        colors = {"fd": "tab:red", "regression": "tab:blue", "mollified": "tab:green"}
        # Paths that coincide stay visible: large open circles under smaller filled marks.
        marks = {"fd": dict(marker="o", ms=8, mfc="none"), "regression": dict(marker="o", ms=4),
                 "mollified": dict(marker="x", ms=4)}  # fmt: skip
        for r, curve in enumerate(curves):
            w, loss = (np.asarray(v) for v in self.curves[curve])
            for c, schedule in enumerate(SCHEDULES):
                ax = axes[r, c]
                ax.plot(w, loss, color="0.6", lw=0.8, label="sampled loss")
                for method in GRID_METHODS:
                    p = self.paths[(curve, method, schedule)]
                    ax.plot(p.w, p.loss, lw=0.8, color=colors[method], **marks[method],
                            label=f"{method}: {p.stop_reason()}")  # fmt: skip
                rate = f"eta {s.eta:g}" + (f" x {s.growth:g}/step" if schedule == "growing"
                                           else " fixed")  # fmt: skip
                ax.set_title(f"{curve}, {rate}", fontsize=10)
                ax.set_xlabel("w (input current w x 34.6 uA/cm^2)")
                ax.set_ylabel("loss: mean release over tau")
                ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        return {"descent_grid": fig}


class DescentGrid(AbstractExperiment):
    """fd, regression and mollified descent, fixed and growing rates, 1 and 10 trials."""

    name = "descent-grid"
    title = "Descent by method x learning-rate schedule on the 1-trial and 10-trial curves"
    section = SECTION
    claims = (SMOOTHED_BEAT_FD,)

    def quick(self) -> DescentGridSettings:
        return DescentGridSettings(tau_ms=200.0)

    def full(self) -> DescentGridSettings:
        return DescentGridSettings()

    def tiny(self) -> DescentGridSettings:
        return DescentGridSettings(tau_ms=10.0, dt_ms=0.05, points=21, trials=2, steps=5,
                                   neighbours=2, width=0.3)  # fmt: skip

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _GridResult:
        from weakgrad.analysis.descend import CentralSlope, RegressionSlope, grid_descent
        from weakgrad.analysis.landscape import LandscapeSettings
        from weakgrad.analysis.mollify import BumpKernel, mollify_curve

        s = settings
        curves, paths = {}, {}
        final: dict[str, dict[str, dict[str, float]]] = {}
        ranges = {}
        for trials, noise in ((1, 0.0), (s.trials, s.noise)):
            label = "1 trial" if trials == 1 else f"{trials} trials, noise {noise:g}"
            ls = LandscapeSettings(
                w_min=0.0, w_max=3.0, points=s.points, trials=trials, noise=noise,
                tau_ms=s.tau_ms, dt_ms=s.dt_ms, seed=s.seed,
            )  # fmt: skip
            curve = swept_curve(ls)
            w, loss = np.asarray(curve.w, np.float64), np.asarray(curve.loss_mean, np.float64)
            curves[label] = (w, loss)
            ranges[label] = float(np.ptp(loss))
            targets = {
                "fd": (loss, CentralSlope()),
                "regression": (loss, RegressionSlope(s.neighbours)),
                "mollified": (mollify_curve(w, loss, BumpKernel(s.width)).y, CentralSlope()),
            }
            final[label] = {}
            for schedule in SCHEDULES:
                growth = s.growth if schedule == "growing" else 1.0
                final[label][schedule] = {}
                for method, (target, slope) in targets.items():
                    p = grid_descent(w, target, w0=s.w0, eta=s.eta, steps=s.steps,
                                     slope=slope, growth=growth)  # fmt: skip
                    # Report the path on the sampled loss (the mollified curve is only
                    # what the mollified method reads its slope from).
                    idx = np.searchsorted(w, p.w)
                    p = dataclasses.replace(p, loss=loss[idx])
                    paths[(label, method, schedule)] = p
                    final[label][schedule][method] = float(p.loss[-1])
            if progress:
                progress(1)
        data = {"final_loss": final, "loss_range": ranges}
        return _GridResult(self, s, data, curves, paths)
