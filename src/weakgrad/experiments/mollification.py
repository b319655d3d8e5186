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

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict, low_loss_level, roughness
from weakgrad.experiments.descent import DescentSettings, _curve

__all__ = [
    "BumpMollifier",
    "BumpSettings",
    "check_bump_is_mollifier",
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
    its least-squares line over the original's loss range there. <= 0.05 reproduces
    "removes the noise at the small scale"; at most half the original's: partly.

    The line is the measure fixed before weakgrad's numbers were seen. The curve peaks near
    w = 0.75, so part of what the line calls roughness is that arch; the distance from a
    parabola (which forgives it) is reported beside the verdict, not used for it, since it
    was proposed after the line's verdict was known (see the session note of issue 13/15)."""
    inside = (data["w"] >= ZOOM[0]) & (data["w"] <= ZOOM[1]) & data["valid"]
    if inside.sum() < 3:
        return Verdict.NOT_REPRODUCED, "fewer than 3 valid mollified points on [0.5, 0.75]"
    w, original = data["w"][inside], data["loss"][inside]
    scale = float(np.ptp(original))
    rm = roughness(w, data["mollified"][inside], scale)
    ro = roughness(w, original, scale)
    rm2 = roughness(w, data["mollified"][inside], scale, degree=2)
    ro2 = roughness(w, original, scale, degree=2)
    measured = (
        f"roughness on [0.5, 0.75] from a line: mollified {rm:.3g}, original {ro:.3g} "
        f"(from a parabola, not used for the verdict: {rm2:.3g} and {ro2:.3g})"
    )
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
    measures="small-scale roughness (RMS distance from the least-squares line / the "
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


# --- the bump mollifier and a Gaussian blob ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BumpSettings(ExperimentSettings):
    """``points`` grid points per axis on [-2, 2] for the integrals and figures; ``scale``:
    the half-width c of the scaled bump; ``sigma``: the Gaussian blob's standard deviation."""

    points: int = 2001
    scale: float = 0.25
    sigma: float = 0.5


def check_bump_is_mollifier(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The bump (unit, scaled and 2-D) integrates to 1 within 1e-3 and is exactly 0 at
    |x| >= its width: reproduced; integrals right but not compact: partly."""
    integrals = {k: float(v) for k, v in data["integrals"].items()}
    worst = max(abs(v - 1) for v in integrals.values())
    outside = float(data["max_outside"])
    measured = (
        "integrals "
        + ", ".join(f"{k} {v:.5f}" for k, v in integrals.items())
        + f"; largest value outside the support {outside:.3g}"
    )
    if worst <= 1e-3 and outside == 0.0:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if worst <= 1e-3 else Verdict.NOT_REPRODUCED), measured


BUMP = Claim(
    id="bump-is-a-mollifier",
    section=SECTION,
    claim="The bump phi(x) = k_n exp(1/(|x|^2 - 1)) for |x| < 1 (0 elsewhere), with k_n one "
    "over the volume, is a mollifier: compactly supported and integrating to 1.",
    measures="trapezoid integrals of weakgrad's bump (unit width, the scaled bump, 2-D) "
    "within 1e-3 of 1 and the largest value at |x| >= the width exactly 0: reproduced; "
    "integrals right but not compact: partly.",
    check=check_bump_is_mollifier,
)


@dataclasses.dataclass(frozen=True)
class _BumpResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: BumpSettings
    data: Mapping[str, Any]
    curves: Mapping[str, np.ndarray]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json

        c = self.curves
        write_csv(
            folder / "bump_1d.csv",
            ["x", "bump", "scaled_bump", "gaussian"],
            ([float(v) for v in row] for row in zip(c["x"], c["bump"], c["scaled"], c["gauss"],
                                                    strict=True)),
        )  # fmt: skip
        write_json(
            folder / "integrals.json",
            {"integrals": self.data["integrals"], "max_outside": self.data["max_outside"]},
        )

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        s, c = self.settings, self.curves
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(c["x"], c["bump"], color="tab:blue", lw=1.5, label="bump phi (width 1)")
        ax.plot(c["x"], c["scaled"], color="tab:orange", lw=1.5,
                label=f"scaled bump phi_c, c = {s.scale:g}")  # fmt: skip
        ax.plot(c["x"], c["gauss"], color="tab:green", lw=1.0, ls="--",
                label=f"Gaussian, sigma = {s.sigma:g}")  # fmt: skip
        ax.set_xlabel("x (units of the mollified variable)")
        ax.set_ylabel("density (1 / x units)")
        ax.set_title("The bump mollifier, scaled, and a Gaussian (not compactly supported)")
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        fig2, ax2 = plt.subplots(figsize=(5, 4.5))
        x = c["x2"]
        im = ax2.imshow(c["blob"], origin="lower", extent=(x[0], x[-1], x[0], x[-1]),
                        cmap="viridis")  # fmt: skip
        fig2.colorbar(im, ax=ax2, label="density (1 / x units^2)")
        ax2.set_xlabel("x1 (x units)")
        ax2.set_ylabel("x2 (x units)")
        ax2.set_title(f"2-D Gaussian blob, sigma = {s.sigma:g}")
        fig2.tight_layout()
        return {"bump_1d": fig, "gaussian_blob_2d": fig2}


class BumpMollifier(AbstractExperiment):
    """The bump mollifier in 1-D, scaled, and a 2-D Gaussian blob; their integrals."""

    name = "bump-mollifier"
    title = "The bump mollifier (1-D, scaled) and a 2-D Gaussian blob"
    section = SECTION
    claims = (BUMP,)

    def quick(self) -> BumpSettings:
        return BumpSettings()

    def full(self) -> BumpSettings:
        return BumpSettings(points=4001)

    def tiny(self) -> BumpSettings:
        return BumpSettings(points=201)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _BumpResult:
        from weakgrad.analysis.bump import bump
        from weakgrad.analysis.mollify import GaussianKernel

        s = settings
        x = np.linspace(-2.0, 2.0, s.points)
        one = np.asarray(bump(x[:, None], 1.0), np.float64)
        scaled = np.asarray(bump(x[:, None], s.scale), np.float64)
        gauss = GaussianKernel(s.sigma).weights(x)
        x2 = np.linspace(-2.0, 2.0, min(s.points, 401))
        grid = np.stack(np.meshgrid(x2, x2, indexing="ij"), axis=-1)
        two = np.asarray(bump(grid, 1.0), np.float64)
        blob = np.outer(GaussianKernel(s.sigma).weights(x2), GaussianKernel(s.sigma).weights(x2))
        integrals = {
            "1-D": float(np.trapezoid(one, x)),
            f"scaled (c = {s.scale:g})": float(np.trapezoid(scaled, x)),
            "2-D": float(np.trapezoid(np.trapezoid(two, x2, axis=1), x2)),
        }
        outside = max(
            float(np.abs(one[np.abs(x) >= 1]).max()),
            float(np.abs(scaled[np.abs(x) >= s.scale]).max()),
            float(np.abs(two[np.linalg.norm(grid, axis=-1) >= 1]).max()),
        )
        data = {"integrals": integrals, "max_outside": outside}
        curves = {"x": x, "bump": one, "scaled": scaled, "gauss": gauss, "x2": x2, "blob": blob}
        return _BumpResult(self, s, data, curves)
