"""Study 000, "Mollification", approach 2 (mollifying the voltage): a raster and example
traces of many noisy HH neurons with the same input weight, and the zoom at the first spike
of one trace mollified repeatedly with the bump (c = 10 time steps), the border region
marked. Simulation is :func:`weakgrad.sim.network.simulate`; the smoothing
:func:`weakgrad.analysis.mollify.mollify_trace`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = ["VoltageSettings", "VoltageMollification", "check_spike_smoothed"]

SECTION = "Mollification"
I0 = 34.6  # uA/cm^2 per unit weight


@dataclasses.dataclass(frozen=True)
class VoltageSettings(ExperimentSettings):
    """``neurons`` HH neurons with noise ``noise`` uA/cm^2 per step and input weight ``w``
    (current ``w * 34.6`` uA/cm^2), ``steps`` steps of ``dt_ms`` recorded after
    ``transient_steps`` discarded ones; the zoom is ``zoom_steps`` on each side of the
    first spike of neuron 0, mollified ``passes`` times by a bump of half-width
    ``kernel_steps`` steps."""

    neurons: int = 1000
    steps: int = 10_000
    transient_steps: int = 2_000
    dt_ms: float = 0.01
    w: float = 1.0
    noise: float = 5.0
    zoom_steps: int = 200
    kernel_steps: int = 10
    passes: int = 3


def check_spike_smoothed(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The steepest voltage slope (|dV/dt|, mV/ms) at the zoomed spike, away from the border
    region, after each pass: falling with every pass and at most half the raw one after the
    last: reproduced; falling but not that far: partly. No spike in the zoom: there is
    nothing to smooth, not reproduced."""
    if not data.get("spike_found", True):
        return Verdict.NOT_REPRODUCED, "no spike in the zoomed trace: nothing to mollify"
    raw = float(data["raw_max_slope"])
    passes = [float(v) for v in data["max_slope"]]
    falling = all(b < a for a, b in zip([raw, *passes], passes, strict=False))
    measured = (
        f"steepest |dV/dt| {raw:.4g} mV/ms raw, "
        + ", ".join(f"{v:.4g}" for v in passes)
        + f" after {len(passes)} passes"
    )
    if falling and passes and passes[-1] <= 0.5 * raw:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if falling else Verdict.NOT_REPRODUCED), measured


SMOOTHED = Claim(
    id="voltage-mollification-smooths-spike",
    section=SECTION,
    claim="Applying the mollifier (c = 10 time steps) repeatedly to the voltage trace around "
    "the first spike smooths out the spike; the borders need ghost points and are truncated.",
    measures="steepest |dV/dt| in the zoom outside the border region, raw and after each "
    "pass; reproduced if it falls with every pass to at most half the raw value, partly if "
    "it falls but less.",
    check=check_spike_smoothed,
)


@dataclasses.dataclass(frozen=True)
class _VoltageResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: VoltageSettings
    data: Mapping[str, Any]
    arrays: Mapping[str, Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_npz

        a = self.arrays
        write_npz(folder / "voltages.npz", voltages=a["voltages"], dt_ms=self.settings.dt_ms)
        cols = [a["t"], a["zoom"], *a["mollified"], a["valid"]]
        header = ["t_ms", "v_mV"] + [f"v_mollified_{k + 1}_mV" for k in range(len(a["mollified"]))]
        write_csv(
            folder / "zoom_mollified.csv",
            [*header, "valid_after_last_pass"],
            ([*(float(v) for v in row[:-1]), bool(row[-1])] for row in zip(*cols, strict=True)),
        )

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        s, a = self.settings, self.arrays
        v = a["voltages"]
        t_all = np.arange(v.shape[0]) * s.dt_ms
        fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(2, 1))
        im = ax0.imshow(v.T, aspect="auto", origin="lower", cmap="viridis",
                        extent=(t_all[0], t_all[-1], 0, v.shape[1]))  # fmt: skip
        fig.colorbar(im, ax=ax0, label="membrane potential (mV)")
        ax0.set_ylabel("neuron")
        ax0.set_title(
            f"{v.shape[1]} HH neurons, noise {s.noise:g} uA/cm^2, current {s.w * I0:g} uA/cm^2"
        )
        colors = ("tab:blue", "tab:orange", "tab:green")
        for k in range(min(3, v.shape[1])):
            ax1.plot(t_all, v[:, k], color=colors[k], lw=0.6, label=f"neuron {k}")
        ax1.set_xlabel("time after the transient (ms)")
        ax1.set_ylabel("V (mV)")
        ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the data
        fig.tight_layout()

        fig2, ax = plt.subplots(figsize=(7, 4))
        t = a["t"]
        ax.plot(t, a["zoom"], color="black", lw=1.0, label="voltage")
        cmap = plt.cm.viridis(np.linspace(0.2, 0.9, len(a["mollified"])))
        for k, y in enumerate(a["mollified"]):
            ax.plot(t, y, color=cmap[k], lw=1.3, label=f"mollified x{k + 1}")
        border = ~a["valid"]
        if border.any():
            ax.fill_between(t, 0, 1, where=border, color="tab:red", alpha=0.12, lw=0,
                            transform=ax.get_xaxis_transform(),
                            label="border region (ghost points)")  # fmt: skip
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("V (mV)")
        ax.set_title(
            f"First spike of neuron 0, mollified by a bump of {s.kernel_steps} steps "
            f"({s.kernel_steps * s.dt_ms:g} ms)"
        )
        ax.legend(fontsize=7, loc="upper right")
        fig2.tight_layout()
        return {"voltage_raster": fig, "voltage_mollified": fig2}


class VoltageMollification(AbstractExperiment):
    """Voltages of many noisy neurons, and the first spike of one mollified repeatedly."""

    name = "voltage-mollification"
    title = "Voltage raster of noisy neurons and the mollified spike"
    section = SECTION
    claims = (SMOOTHED,)

    def quick(self) -> VoltageSettings:
        return VoltageSettings(neurons=100)

    def full(self) -> VoltageSettings:
        return VoltageSettings()

    def tiny(self) -> VoltageSettings:
        return VoltageSettings(neurons=3, steps=1500, transient_steps=0, zoom_steps=60)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _VoltageResult:
        import jax
        import jax.numpy as jnp

        from weakgrad.analysis.mollify import BumpKernel, mollify_trace
        from weakgrad.sim.network import Network, Record, simulate
        from weakgrad.sim.neurons import HodgkinHuxley

        s = settings
        net = Network.independent(s.neurons, HodgkinHuxley(noise_std=s.noise), weight=s.w)
        trace = simulate(
            net, jnp.full((1,), I0, jnp.float32), dt=s.dt_ms,
            steps=s.transient_steps + s.steps, key=jax.random.key(s.seed),
            record=Record(voltages=True),
        )  # fmt: skip
        v = np.asarray(trace.voltages[0], np.float64)[s.transient_steps :]
        crossing = np.flatnonzero((v[:-1, 0] < 0) & (v[1:, 0] >= 0))
        centre = int(crossing[0]) if crossing.size else int(np.argmax(v[:, 0]))
        lo, hi = max(centre - s.zoom_steps, 0), min(centre + s.zoom_steps, v.shape[0])
        zoom = v[lo:hi, 0]
        kernel = BumpKernel(s.kernel_steps * s.dt_ms)
        passes = [mollify_trace(zoom, s.dt_ms, kernel, times=k + 1) for k in range(s.passes)]
        last = passes[-1].valid
        t = lo * s.dt_ms + np.arange(zoom.size) * s.dt_ms

        def steepest(y):
            return float(np.max(np.abs(np.diff(y)[last[1:]])) / s.dt_ms)

        data = {
            "raw_max_slope": steepest(zoom),
            "max_slope": [steepest(p.y) for p in passes],
            "spike_found": bool(crossing.size),
        }
        arrays = {
            "voltages": v.astype(np.float32), "t": t, "zoom": zoom,
            "mollified": [p.y for p in passes], "valid": last,
        }  # fmt: skip
        return _VoltageResult(self, s, data, arrays)
