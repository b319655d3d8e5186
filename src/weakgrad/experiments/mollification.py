"""Study 000, "Mollification", approach 1 (mollifying the loss): the single-neuron curve
convolved with the bump mollifier, with its zoom, and finite-difference descent with a
growing learning rate with and without mollification. The curve is the one the descent
experiments use (swept once per process), the smoothing
:func:`weakgrad.analysis.mollify.mollify_curve` with a
:class:`~weakgrad.analysis.mollify.BumpKernel`, the paths
:func:`weakgrad.analysis.descend.grid_descent`'s."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult
from weakgrad.experiments.claims import Claim, Verdict, low_loss_level, roughness
from weakgrad.experiments.descent import DescentSettings, _curve

__all__ = [
    "MollifySettings",
    "MollifiedLandscape",
    "MollifiedDescent",
    "check_mollified_zoom_smooth",
    "check_mollified_descent_faster",
]

SECTION = "Mollification"
ZOOM = (0.5, 0.75)


@dataclasses.dataclass(frozen=True)
class MollifySettings(DescentSettings):
    """:class:`DescentSettings` and ``width``, the bump's half-width in w units (the
    study's "some small value" c; 0.1 is ``weakgrad descend --width``'s default)."""

    width: float = 0.1
    etas: tuple[float, ...] = (0.1,)
    growth: float = 1.1


def _mollified(s: MollifySettings):
    from weakgrad.analysis.mollify import BumpKernel, mollify_curve

    _, curve = _curve(s, "mollified", None, width=s.width)
    w, loss = np.asarray(curve.w), np.asarray(curve.loss_mean)
    return curve, mollify_curve(w, loss, BumpKernel(s.width))


def check_mollified_zoom_smooth(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Small-scale roughness on [0.5, 0.75] of the mollified curve: the RMS distance from
    its least-squares parabola (the curve bends there: it peaks near w = 0.75) over the
    original's loss range there. <= 0.05 reproduces "removes the noise at the small scale";
    at most half the original's: partly."""
    inside = (data["w"] >= ZOOM[0]) & (data["w"] <= ZOOM[1]) & data["valid"]
    if inside.sum() < 3:
        return Verdict.NOT_REPRODUCED, "fewer than 3 valid mollified points on [0.5, 0.75]"
    w, original = data["w"][inside], data["loss"][inside]
    scale = float(np.ptp(original))
    rm = roughness(w, data["mollified"][inside], scale, degree=2)
    ro = roughness(w, original, scale, degree=2)
    measured = f"roughness on [0.5, 0.75]: mollified {rm:.3g}, original {ro:.3g}"
    if rm <= 0.05:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if rm <= 0.5 * ro else Verdict.NOT_REPRODUCED), measured


def _first_low(path, level: float) -> int | None:
    below = np.flatnonzero(np.asarray(path["loss"]) <= level)
    return int(below[0]) if below.size else None


def check_mollified_descent_faster(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Steps until the path first reaches the low-loss region (the original curve's loss in
    its lowest 10%): with mollification it gets there and in fewer steps than without (or
    without never does): reproduced; gets there, not faster: partly; never: not."""
    level = low_loss_level(data["loss"])
    with_m, without = _first_low(data["with"], level), _first_low(data["without"], level)

    def say(n):
        return "never" if n is None else f"after {n} steps"

    measured = (
        f"low-loss region (loss <= {level:.4g}) reached {say(with_m)} with mollification, "
        f"{say(without)} without"
    )
    if with_m is None:
        return Verdict.NOT_REPRODUCED, measured
    if without is None or with_m < without:
        return Verdict.REPRODUCED, measured
    return Verdict.PARTLY, measured


SMOOTH = Claim(
    id="mollified-loss-smooth",
    section=SECTION,
    claim="Mollifying the loss directly removes the noise at the small scale and makes the "
    "loss curve much more tractable for gradient descent (zoom: mollified over original).",
    measures="small-scale roughness (RMS distance from the least-squares parabola / the "
    "original's loss range there) of the mollified curve on [0.5, 0.75], valid points only; "
    "reproduced <= 0.05, partly if at most half the original's.",
    check=check_mollified_zoom_smooth,
)
FASTER = Claim(
    id="mollified-descent-faster",
    section=SECTION,
    claim="Finite-difference descent with a growing learning rate on the mollified loss "
    "converges faster, with much clearer gradients, than without mollification.",
    measures="steps until the loss (of the original curve) first lies in its lowest 10%: "
    "reproduced if reached with mollification and sooner than without; partly if reached "
    "but not sooner.",
    check=check_mollified_descent_faster,
)


@dataclasses.dataclass(frozen=True)
class _MollifiedResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: MollifySettings
    data: Mapping[str, Any]
    curve: Any  # Landscape1D
    mollified: Any  # Mollified
    paths: Mapping[str, Any]  # "with"/"without" -> DescentPath

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv

        c, m = self.curve, self.mollified
        rows = zip(c.w, c.loss_mean, m.y, m.valid, strict=True)
        write_csv(
            folder / "landscape_mollified.csv",
            ["w", "loss_mean", "loss_mollified", "valid"],
            ([float(a), float(b), float(y), bool(v)] for a, b, y, v in rows),
        )
        for name, p in self.paths.items():
            p.to_csv(folder / f"path_{name}_mollification.csv")

    def figures(self) -> dict[str, Any]:
        from weakgrad.plots import plot_descent, plot_landscape

        s, c, m = self.settings, self.curve, self.mollified
        if not self.paths:
            return {
                "landscape_mollified": plot_landscape(
                    c, smooth=m.y, title=f"Loss mollified by a bump of half-width {s.width:g}"
                ),
                "zoom_mollified": _plot_zoom(c, m, s),
            }
        w, loss = np.asarray(c.w), np.asarray(c.loss_mean)
        title = f"finite differences, eta = {s.etas[0]:g} x {s.growth:g}/step, w0 = {s.w0:g}"
        return {
            "path_without_mollification": plot_descent(
                w, loss, self.paths["without"], title=f"without mollification: {title}"
            ),
            "path_with_mollification": plot_descent(
                w,
                loss,
                self.paths["with"],
                smooth=m.y,
                title=f"with mollification (half-width {s.width:g}): {title}",
            ),  # fmt: skip
        }


def _plot_zoom(c, m, s: MollifySettings):
    import matplotlib.pyplot as plt

    inside = (c.w >= ZOOM[0]) & (c.w <= ZOOM[1])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(c.w[inside], c.loss_mean[inside], color="tab:blue", lw=0.8, marker=".", ms=3,
            label="original")  # fmt: skip
    ax.plot(c.w[inside], m.y[inside], color="tab:orange", lw=1.5,
            label=f"mollified (bump half-width {s.width:g})")  # fmt: skip
    ax.set_xlabel("input weight w (current = w * 34.6 uA/cm^2)")
    ax.set_ylabel("loss: mean output over tau")
    ax.set_title(f"Zoom on [{ZOOM[0]}, {ZOOM[1]}]: original and mollified")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


class MollifiedLandscape(AbstractExperiment):
    """The single-neuron curve mollified by a bump, and its zoom on [0.5, 0.75]."""

    name = "mollified-landscape"
    title = "Mollified loss curve and its zoom"
    section = SECTION
    claims = (SMOOTH,)

    def quick(self) -> MollifySettings:
        return MollifySettings(tau_ms=200.0, points=301)

    def full(self) -> MollifySettings:
        return MollifySettings(tau_ms=1000.0, points=301)

    def tiny(self) -> MollifySettings:
        return MollifySettings(tau_ms=10.0, points=11, width=0.5)

    def run(self, settings, *, progress: Callable[[int], None] | None = None):
        curve, m = _mollified(settings)
        data = {
            "w": np.asarray(curve.w), "loss": np.asarray(curve.loss_mean),
            "mollified": np.asarray(m.y), "valid": np.asarray(m.valid),
        }  # fmt: skip
        return _MollifiedResult(self, settings, data, curve, m, {})


class MollifiedDescent(AbstractExperiment):
    """Finite-difference descent from w = 1.5 with a learning rate growing 10% a step, on
    the curve and on its mollified version."""

    name = "mollified-descent"
    title = "Descent without and with mollification"
    section = SECTION
    claims = (FASTER,)

    def quick(self) -> MollifySettings:
        return MollifySettings(tau_ms=200.0, points=301)

    def full(self) -> MollifySettings:
        return MollifySettings(tau_ms=1000.0, points=301)

    def tiny(self) -> MollifySettings:
        return MollifySettings(tau_ms=10.0, points=11, width=0.5, steps=5)

    def run(self, settings, *, progress: Callable[[int], None] | None = None):
        from weakgrad.analysis.descend import CentralSlope, grid_descent

        s = settings
        curve, m = _mollified(s)
        w, loss = np.asarray(curve.w), np.asarray(curve.loss_mean)
        kw = dict(w0=s.w0, eta=s.etas[0], steps=s.steps, slope=CentralSlope(), growth=s.growth)
        paths = {"without": grid_descent(w, loss, **kw), "with": grid_descent(w, m.y, **kw)}
        # The "with" path is scored on the original curve's loss at the points it visits.
        idx = np.searchsorted(w, paths["with"].w)
        data = {
            "loss": loss,
            "without": {"loss": np.asarray(paths["without"].loss)},
            "with": {"loss": loss[np.clip(idx, 0, w.size - 1)]},
        }
        return _MollifiedResult(self, s, data, curve, m, paths)
