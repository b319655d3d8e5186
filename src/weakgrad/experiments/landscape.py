"""Study 000, "Loss Landscape": the single HH neuron's turn-off landscape and its zoom, and
the same with 10 noisy trials. The sweeps are :func:`weakgrad.analysis.landscape.landscape_study`;
this module only chooses settings, draws and checks the claims. Nothing here imports JAX
at module level (the CLI's ``--help`` lists the experiments)."""

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
from weakgrad.experiments.claims import Claim, Verdict, jump_mask, roughness

__all__ = [
    "LandscapeExperimentSettings",
    "SingleNeuronLandscape",
    "TrialAveraging",
    "TrialNoiseSweep",
    "TrialNoiseSettings",
    "check_straight_without_lifting",
    "check_firing_stop",
    "check_staircase",
    "check_jumps_at_spike_changes",
    "check_ten_trials_straight",
    "check_jumps_less_extreme",
]

SECTION = "Loss Landscape"
ZOOM = (0.5, 0.75)
I0 = 34.6  # uA/cm^2 per unit weight, as the study and `weakgrad landscape`


@dataclasses.dataclass(frozen=True)
class LandscapeExperimentSettings(ExperimentSettings):
    """Sweeps of the single neuron's input weight on [0, 3] (``points``) and the zoom
    [0.5, 0.75] (``zoom_points``); ``tau_ms`` simulated per trial at ``dt_ms``; the noisy
    sweeps use ``trials`` trials of noise ``noise`` uA/cm^2 per step."""

    tau_ms: float = 1000.0
    dt_ms: float = 0.01
    points: int = 301
    zoom_points: int = 301
    trials: int = 10
    noise: float = 5.0


def _sweep(s: LandscapeExperimentSettings, *, zoom: bool, trials: int, noise: float, progress):
    from weakgrad.analysis.landscape import LandscapeSettings

    settings = LandscapeSettings(
        zoom=ZOOM if zoom else None, w_min=0.0, w_max=3.0,
        points=s.zoom_points if zoom else s.points, trials=trials, noise=noise,
        tau_ms=s.tau_ms, dt_ms=s.dt_ms, i0=I0, seed=s.seed,
    )  # fmt: skip
    del progress  # the runner reports per experiment
    return swept_curve(settings)  # once per process: trial averaging reuses the 1-trial curve


def _curve_data(prefix: str, curve) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_w": np.asarray(curve.w),
        f"{prefix}_loss": np.asarray(curve.loss_mean),
        f"{prefix}_spikes": np.asarray(curve.spikes_mean),
    }


# --- claims of the single-trial landscape ------------------------------------------------


def check_firing_stop(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Where firing stops (``analysis.landscape.firing_stop``) against the study's w ~ 1.8.
    The study gives one decimal: within 0.1 reproduces it; within 0.3 is "partly"."""
    from weakgrad.analysis.landscape import firing_stop

    stop = firing_stop(data["full_w"], data["full_spikes"])
    if stop is None:
        return Verdict.NOT_REPRODUCED, "repetitive firing does not stop on [0, 3]"
    off = abs(stop - 1.8)
    verdict = (
        Verdict.REPRODUCED if off <= 0.1 + 1e-9 else Verdict.PARTLY if off <= 0.3 + 1e-9
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, f"repetitive firing stops at w = {stop:.3g} ({off:.2g} from 1.8)"


def check_staircase(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The zoom as steps and jumps: a jump is an adjacent difference above 5x the median
    one; reproduced when there are jumps and they carry at least half the total variation,
    partly when there are jumps carrying less, not reproduced without jumps."""
    loss = np.asarray(data["zoom_loss"], np.float64)
    jumps = jump_mask(loss)
    d = np.abs(np.diff(loss))
    total = float(d.sum())
    share = float(d[jumps].sum()) / total if total > 0 else 0.0
    measured = (
        f"{int(jumps.sum())} jumps among {d.size} adjacent differences carry "
        f"{100 * share:.0f}% of the zoom's total variation"
    )
    if not jumps.any():
        return Verdict.NOT_REPRODUCED, measured
    return (Verdict.REPRODUCED if share >= 0.5 else Verdict.PARTLY), measured


def check_jumps_at_spike_changes(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Do the zoom's jumps (as in :func:`check_staircase`) fall where the spike count
    changes? At least 80% of them: reproduced; at least half: partly."""
    loss = np.asarray(data["zoom_loss"], np.float64)
    jumps = jump_mask(loss)
    changes = np.diff(np.asarray(data["zoom_spikes"], np.float64)) != 0
    if not jumps.any():
        return Verdict.NOT_REPRODUCED, "no jumps in the zoom"
    frac = float((jumps & changes).sum()) / float(jumps.sum())
    verdict = (
        Verdict.REPRODUCED if frac >= 0.8 else Verdict.PARTLY if frac >= 0.5
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, (
        f"{int((jumps & changes).sum())} of {int(jumps.sum())} jumps ({100 * frac:.0f}%) "
        "fall where the spike count changes"
    )


FIRING_STOP = Claim(
    id="firing-stops-near-1.8",
    section=SECTION,
    claim="Around w = 1.8 the neuron undergoes a bifurcation and the behavior changes, "
    "leading to no firing.",
    measures="w where the spike count first drops below half its peak (firing_stop); "
    "reproduced within 0.1 of 1.8 (the study's one decimal), partly within 0.3.",
    check=check_firing_stop,
)
STAIRCASE = Claim(
    id="zoom-steps-and-jumps",
    section=SECTION,
    claim="The zoom on [0.5, 0.75] shows large discontinuous jumps in the loss: the loss "
    "changes chaotically on the micro scale.",
    measures="jumps = adjacent differences above 5x the median one; reproduced when they "
    "carry >= 50% of the zoom's total variation, partly when fewer, not without jumps.",
    check=check_staircase,
)
JUMPS_AT_SPIKES = Claim(
    id="jumps-where-firing-changes",
    section=SECTION,
    claim="There are large discontinuous jumps in the loss when the number of firings changes.",
    measures="share of the zoom's jumps at which the spike count changes; reproduced >= "
    "80%, partly >= 50%.",
    check=check_jumps_at_spike_changes,
)


@dataclasses.dataclass(frozen=True)
class _LandscapeResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: LandscapeExperimentSettings
    data: Mapping[str, Any]
    curves: Mapping[str, Any]  # name -> Landscape1D

    def write_data(self, folder: Path) -> None:
        for name, curve in self.curves.items():
            curve.to_csv(folder / f"{name}.csv")


class _SingleResult(_LandscapeResult):
    def figures(self) -> dict[str, Any]:
        from weakgrad.plots import plot_landscape

        s = self.settings
        return {
            "landscape": plot_landscape(
                self.curves["landscape"],
                title=f"Single HH neuron, 1 trial, tau = {s.tau_ms:g} ms",
            ),
            "zoom": plot_landscape(
                self.curves["zoom"],
                title=f"Zoom on w in [{ZOOM[0]}, {ZOOM[1]}], 1 trial, tau = {s.tau_ms:g} ms",
            ),
        }


class SingleNeuronLandscape(AbstractExperiment):
    """The single HH neuron's turn-off landscape (input current w * 34.6 uA/cm^2, w on
    [0, 3]), one noise-free trial, and its zoom on [0.5, 0.75]."""

    name = "single-neuron-landscape"
    title = "Single neuron: loss landscape and zoom (1 trial)"
    section = SECTION
    claims = (FIRING_STOP, STAIRCASE, JUMPS_AT_SPIKES)

    def quick(self) -> LandscapeExperimentSettings:
        return LandscapeExperimentSettings(tau_ms=200.0, points=61, zoom_points=61)

    def full(self) -> LandscapeExperimentSettings:
        return LandscapeExperimentSettings(tau_ms=1000.0, points=301, zoom_points=301)

    def tiny(self) -> LandscapeExperimentSettings:
        return LandscapeExperimentSettings(tau_ms=10.0, dt_ms=0.05, points=7, zoom_points=7)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _SingleResult:
        s = settings
        full = _sweep(s, zoom=False, trials=1, noise=0.0, progress=progress)
        zoom = _sweep(s, zoom=True, trials=1, noise=0.0, progress=progress)
        data = {**_curve_data("full", full), **_curve_data("zoom", zoom)}
        return _SingleResult(self, s, data, {"landscape": full, "zoom": zoom})


# --- trial averaging ----------------------------------------------------------------------


def check_ten_trials_straight(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Roughness (RMS distance from the least-squares line / the 1-trial zoom's loss range)
    of the 10-trial zoom: "almost completely straight" is <= 0.05 (reproduced); at most half
    the 1-trial zoom's but not straight: partly; otherwise not reproduced."""
    scale = float(np.ptp(data["zoom1_loss"]))
    r10 = roughness(data["zoom10_w"], data["zoom10_loss"], scale)
    r1 = roughness(data["zoom1_w"], data["zoom1_loss"], scale)
    measured = f"roughness of the zoom: {r10:.3g} with 10 trials, {r1:.3g} with 1 trial"
    if r10 <= 0.05:
        return Verdict.REPRODUCED, measured
    if r10 <= 0.5 * r1:
        return Verdict.PARTLY, measured + " (smoother, not straight: > 0.05)"
    return Verdict.NOT_REPRODUCED, measured


def check_jumps_less_extreme(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Largest adjacent loss difference on [0, 3], 10 noisy trials over 1 trial: "much less
    extreme" is a ratio <= 0.5 (reproduced); below 1: partly."""
    big10 = float(np.max(np.abs(np.diff(data["full10_loss"]))))
    big1 = float(np.max(np.abs(np.diff(data["full1_loss"]))))
    ratio = big10 / big1 if big1 > 0 else float("inf")
    verdict = (
        Verdict.REPRODUCED if ratio <= 0.5 else Verdict.PARTLY if ratio < 1
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, (
        f"largest jump {big10:.3g} with 10 trials vs {big1:.3g} with 1 (ratio {ratio:.3f})"
    )


STRAIGHT = Claim(
    id="ten-trial-zoom-straight",
    section=SECTION,
    claim="With N_trials = 10 noisy neurons, the zoom that previously looked like a "
    "discontinuous mess now appears to be almost completely straight (some high-frequency "
    "noise remains).",
    measures="roughness = RMS distance from the least-squares line over [0.5, 0.75] / the "
    "1-trial zoom's loss range; reproduced <= 0.05; partly if at most half the 1-trial "
    "roughness.",
    check=check_ten_trials_straight,
)
LESS_EXTREME = Claim(
    id="ten-trial-jumps-less-extreme",
    section=SECTION,
    claim="With 10 noisy trials the discontinuities are much less extreme.",
    measures="largest adjacent loss difference on [0, 3], 10 trials / 1 trial; reproduced "
    "<= 0.5, partly < 1.",
    check=check_jumps_less_extreme,
)


class _TrialResult(_LandscapeResult):
    def figures(self) -> dict[str, Any]:
        from weakgrad.plots import plot_landscape

        s, c = self.settings, self.curves
        return {
            "landscape_10_trials": plot_landscape(
                c["landscape_10_trials"],
                title=f"{s.trials} noisy trials (noise {s.noise:g} uA/cm^2), tau = {s.tau_ms:g} ms",
            ),
            "zoom_1_vs_10": _plot_zooms(c["zoom_1_trial"], c["zoom_10_trials"], s),
        }


def _plot_zooms(one, ten, s: LandscapeExperimentSettings):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(one.w, one.loss_mean, color="tab:blue", lw=0.8, marker=".", ms=2, label="1 trial")
    ax.plot(
        ten.w, ten.loss_mean, color="tab:red", lw=1.0, marker=".", ms=2,
        label=f"{s.trials} trials, noise {s.noise:g} uA/cm^2",
    )  # fmt: skip
    if ten.trials > 1:
        ax.fill_between(
            ten.w, ten.loss_mean - ten.loss_sem, ten.loss_mean + ten.loss_sem,
            color="tab:red", alpha=0.2, lw=0,
        )  # fmt: skip
    ax.set_xlabel(f"input weight w (current = w * {I0:g} uA/cm^2)")
    ax.set_ylabel("loss: mean output over tau")
    ax.set_title(f"Zoom on [{ZOOM[0]}, {ZOOM[1]}]: 1 trial vs {s.trials} trials")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


class TrialAveraging(AbstractExperiment):
    """The landscape averaged over 10 noisy trials (noise 5 uA/cm^2 per step) and its zoom,
    compared with one noise-free trial."""

    name = "trial-averaging"
    title = "Trial averaging: 10 noisy trials vs 1 trial"
    section = SECTION
    claims = (STRAIGHT, LESS_EXTREME)

    def quick(self) -> LandscapeExperimentSettings:
        return LandscapeExperimentSettings(tau_ms=200.0, points=61, zoom_points=61)

    def full(self) -> LandscapeExperimentSettings:
        return LandscapeExperimentSettings(tau_ms=1000.0, points=301, zoom_points=301)

    def tiny(self) -> LandscapeExperimentSettings:
        return LandscapeExperimentSettings(
            tau_ms=10.0, dt_ms=0.05, points=7, zoom_points=7, trials=2
        )

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _TrialResult:
        s = settings
        full10 = _sweep(s, zoom=False, trials=s.trials, noise=s.noise, progress=progress)
        zoom10 = _sweep(s, zoom=True, trials=s.trials, noise=s.noise, progress=progress)
        # The 1-trial curves are swept again here (as in single-neuron-landscape) so that
        # each experiment stands alone in the cache; at these sizes it costs seconds.
        full1 = _sweep(s, zoom=False, trials=1, noise=0.0, progress=progress)
        zoom1 = _sweep(s, zoom=True, trials=1, noise=0.0, progress=progress)
        data = {
            **_curve_data("full10", full10), **_curve_data("zoom10", zoom10),
            **_curve_data("full1", full1), **_curve_data("zoom1", zoom1),
        }  # fmt: skip
        curves = {
            "landscape_10_trials": full10, "zoom_10_trials": zoom10,
            "landscape_1_trial": full1, "zoom_1_trial": zoom1,
        }  # fmt: skip
        return _TrialResult(self, s, data, curves)


# --- where does trial averaging make the zoom straight? (issue 16) -------------------------


@dataclasses.dataclass(frozen=True)
class TrialNoiseSettings(ExperimentSettings):
    """The zoom [0.5, 0.75] on ``zoom_points`` points, averaged over each number of
    ``trial_counts`` at each noise of ``noises`` (uA/cm^2 per step), ``tau_ms`` per trial;
    roughness against the noise-free single trial."""

    tau_ms: float = 1000.0
    dt_ms: float = 0.01
    zoom_points: int = 301
    trial_counts: tuple[int, ...] = (1, 3, 10, 30)
    noises: tuple[float, ...] = (1.0, 5.0, 20.0, 50.0, 200.0)


def check_straight_without_lifting(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """10-trial zooms over the noise levels: straight (roughness <= 0.05, the measure of
    ``ten-trial-zoom-straight``) at a noise whose mean loss stays within 10% of the
    noise-free zoom's: reproduced; straight only where the noise lifts the loss by more:
    partly; never straight: not reproduced."""
    noises = [float(n) for n in data["noises"]]
    rough = [float(r) for r in data["roughness_10"]]
    lift = [float(v) for v in data["lift_10"]]
    straight = [n for n, r in zip(noises, rough, strict=True) if r <= 0.05]
    clean = [n for n, r, u in zip(noises, rough, lift, strict=True) if r <= 0.05 and u <= 0.1]
    parts = ", ".join(
        f"noise {n:g}: {r:.3g} (loss {100 * u:+.0f}%)"
        for n, r, u in zip(noises, rough, lift, strict=True)
    )
    measured = f"roughness of the 10-trial zoom (mean loss vs noise-free): {parts}"
    if clean:
        return Verdict.REPRODUCED, measured + f"; straight without lifting from noise {clean[0]:g}"
    if straight:
        return Verdict.PARTLY, measured + f"; straight only from noise {straight[0]:g}, lifted"
    return Verdict.NOT_REPRODUCED, measured


STRAIGHT_WHERE = Claim(
    id="trial-averaging-straight-where",
    section=SECTION,
    claim="With N_trials = 10 the zoom appears almost completely straight (the study does "
    "not state the noise level: searched here).",
    measures="roughness (as ten-trial-zoom-straight) of the 10-trial zoom at noise 1-200 "
    "uA/cm^2: <= 0.05 at a noise whose mean loss is within 10% of the noise-free zoom's: "
    "reproduced; <= 0.05 only with the loss lifted more: partly.",
    check=check_straight_without_lifting,
)


@dataclasses.dataclass(frozen=True)
class _TrialNoiseResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: TrialNoiseSettings
    data: Mapping[str, Any]
    grid: Mapping[str, np.ndarray]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_npz

        g, s = self.grid, self.settings
        rows = [
            (t, n, float(g["roughness"][i, j]), float(g["mean_loss"][i, j]))
            for i, t in enumerate(s.trial_counts)
            for j, n in enumerate(s.noises)
        ]
        write_csv(folder / "roughness.csv", ["trials", "noise", "roughness", "mean_loss"], rows)
        write_npz(folder / "zooms.npz", **{k: v for k, v in g.items()})

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        g, s = self.grid, self.settings
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
        colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(s.trial_counts)))
        for i, (t, col) in enumerate(zip(s.trial_counts, colors, strict=True)):
            label = f"{t} trial" if t == 1 else f"{t} trials"
            ax1.plot(s.noises, g["roughness"][i], marker="o", color=col, label=label)
        ax1.axhline(0.05, color="0.4", ls=":", label="straight (0.05)")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("noise std (uA/cm^2 per step)")
        ax1.set_ylabel("roughness of the zoom [0.5, 0.75]")
        ax1.set_title("Roughness vs trials and noise")
        ax1.legend(fontsize=8, loc="best")
        j10 = list(s.trial_counts).index(10) if 10 in s.trial_counts else -1
        # From 0.2: magma's darkest end is black, the noise-free curve's colour.
        ncol = plt.cm.magma(np.linspace(0.2, 0.85, len(s.noises)))
        ax2.plot(g["w"], g["clean"], color="k", lw=1.5, label="1 trial, no noise")
        for j, (n, col) in enumerate(zip(s.noises, ncol, strict=True)):
            ax2.plot(g["w"], g["zooms"][j10, j], color=col, lw=1,
                     label=f"{s.trial_counts[j10]} trials, noise {n:g}")  # fmt: skip
        ax2.set_xlabel("w (input current w x 34.6 uA/cm^2)")
        ax2.set_ylabel("loss: mean release over tau")
        ax2.set_title(f"The zoom averaged over {s.trial_counts[j10]} trials")
        ax2.legend(fontsize=7, loc="best")
        fig.tight_layout()
        return {"trial_noise": fig}


class TrialNoiseSweep(AbstractExperiment):
    """Roughness of the zoom against the number of trials and the noise level."""

    name = "trial-noise-sweep"
    title = "Where trial averaging makes the zoom straight: trials x noise"
    section = SECTION
    claims = (STRAIGHT_WHERE,)

    def quick(self) -> TrialNoiseSettings:
        return TrialNoiseSettings(tau_ms=200.0, zoom_points=61)

    def full(self) -> TrialNoiseSettings:
        return TrialNoiseSettings()

    def tiny(self) -> TrialNoiseSettings:
        return TrialNoiseSettings(tau_ms=10.0, dt_ms=0.05, zoom_points=7,
                                  trial_counts=(1, 10), noises=(5.0, 50.0))  # fmt: skip

    def run(self, settings, *, progress: Callable[[int], None] | None = None):
        from weakgrad.analysis.landscape import LandscapeSettings

        s = settings

        def zoom(trials: int, noise: float):
            ls = LandscapeSettings(
                zoom=ZOOM, w_min=0.0, w_max=3.0, points=s.zoom_points, trials=trials,
                noise=noise, tau_ms=s.tau_ms, dt_ms=s.dt_ms, i0=I0, seed=s.seed,
            )  # fmt: skip
            c = swept_curve(ls)
            return np.asarray(c.w, np.float64), np.asarray(c.loss_mean, np.float64)

        w, clean = zoom(1, 0.0)
        scale = float(np.ptp(clean))
        zooms = np.zeros((len(s.trial_counts), len(s.noises), w.size))
        for i, t in enumerate(s.trial_counts):
            for j, n in enumerate(s.noises):
                zooms[i, j] = zoom(t, n)[1]
            if progress:
                progress(1)
        rough = np.array([[roughness(w, z, scale) for z in row] for row in zooms])
        mean = zooms.mean(axis=2)
        lift = mean / clean.mean() - 1.0
        j10 = list(s.trial_counts).index(10) if 10 in s.trial_counts else -1
        data = {
            "noises": np.asarray(s.noises),
            "roughness_10": rough[j10],
            "lift_10": lift[j10],
        }
        grid = {"w": w, "clean": clean, "zooms": zooms, "roughness": rough, "mean_loss": mean}
        return _TrialNoiseResult(self, s, data, grid)
