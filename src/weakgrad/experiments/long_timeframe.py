"""Study 000, "Case 2: Long Timeframe": the MNIST HH network (784-100-10, Hodgkin-Huxley
neurons, pixels as constant currents) over a long timeframe.

- :class:`InputTraces` -- the weighted input current and the membrane potential of neurons
  of the first and second layer over 100 ms for one digit (the study's "First Layer" and
  "Second Layer" traces), and the spike counts over a short (10 ms) and the long window;
- :class:`UniformShift` -- the loss along the uniform shift of all weights (every weight
  plus ``c``, ``c`` from 0 to 1) at dt 0.01, 0.05 and 0.1 ms for a fixed number of steps
  (10, 50 and 100 ms: "a bigger timestep gives a bigger timeframe"), with the autodiff
  derivative along the shift at every point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "TracesSettings",
    "InputTraces",
    "ShiftSettings",
    "UniformShift",
    "check_few_spikes_short",
    "check_more_chaotic",
    "check_autodiff_blows_up",
    "total_variation_ratio",
]

SECTION = "Case 2: Long Timeframe"


def _network(seed: int, hidden: int):
    import jax

    from weakgrad.tasks.mnist import mnist_network

    return mnist_network("hh", key=jax.random.key(seed), hidden=hidden)


def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from weakgrad.tasks.mnist import load_mnist

    data = load_mnist(None, seed=seed)
    return data.x_train[:n], data.y_train[:n]


# ------------------------------------------------------------------ input currents, traces


@dataclasses.dataclass(frozen=True)
class TracesSettings(ExperimentSettings):
    """One digit through the network for ``duration_ms`` at ``dt_ms``; ``shown`` neurons
    per layer in the figure; spike counts compared over the first ``short_ms``."""

    duration_ms: float = 100.0
    dt_ms: float = 0.1
    short_ms: float = 10.0
    hidden: int = 100
    shown: int = 4


def check_few_spikes_short(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Mean spikes per firing hidden neuron within the short window at most 2 ("only a few
    spikes occur") and over the long window at least 5: reproduced; one of the two: partly."""
    short, long = float(data["spikes_short"]), float(data["spikes_long"])
    few, many = short <= 2, long >= 5
    verdict = (
        Verdict.REPRODUCED if few and many else Verdict.PARTLY if few or many
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, (
        f"mean spikes per firing hidden neuron: {short:.3g} in the first "
        f"{float(data['short_ms']):g} ms, {long:.3g} over {float(data['long_ms']):g} ms "
        f"({int(data['firing'])} of {int(data['hidden'])} hidden neurons fire)"
    )


FEW_SPIKES = Claim(
    id="short-timeframe-few-spikes",
    section="BNN",
    claim="If we use a very small timeframe, autodiff works effectively because only a few "
    "spikes occur; over a larger timeframe the neurons spike many times.",
    measures="the MNIST HH network on one digit: mean spikes per firing hidden neuron in "
    "the first 10 ms at most 2 and over 100 ms at least 5: reproduced; one: partly. (The "
    "autodiff half is measured by the gradient experiments.)",
    check=check_few_spikes_short,
)


@dataclasses.dataclass(frozen=True)
class _TracesResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: TracesSettings
    data: Mapping[str, Any]
    traces: Mapping[str, np.ndarray]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_npz

        write_npz(folder / "traces.npz", **self.traces)
        s = self.settings
        short = int(round(s.short_ms / s.dt_ms))
        rows = [
            (layer, i, int(sp[:short, i].sum()), int(sp[:, i].sum()))
            for layer in (0, 1)
            for sp in [self.traces[f"spikes_{layer}"]]
            for i in range(sp.shape[1])
        ]
        header = ["layer", "neuron", f"spikes_first_{s.short_ms:g}ms",
                  f"spikes_{s.duration_ms:g}ms"]  # fmt: skip
        write_csv(folder / "spike_counts.csv", header, rows)

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        t = self.traces["time_ms"]
        figs = {}
        for layer, name in ((0, "first_layer"), (1, "second_layer")):
            cur, v = self.traces[f"current_{layer}"], self.traces[f"voltage_{layer}"]
            idx = self.traces[f"shown_{layer}"]
            fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
            colors = plt.cm.viridis(np.linspace(0, 0.9, len(idx)))
            for c, i in zip(colors, idx, strict=True):
                ax1.plot(t, cur[:, i], color=c, lw=1, label=f"neuron {int(i)}")
                ax2.plot(t, v[:, i], color=c, lw=0.8)
            ax1.set_ylabel("weighted input current\n(uA/cm^2)")
            ax2.set_ylabel("membrane potential (mV)")
            ax2.set_xlabel("time (ms)")
            ax1.margins(y=0.3)  # room above the traces for the one-row legend
            ax1.legend(fontsize=8, ncol=len(idx), loc="upper right")
            label = "First (hidden)" if layer == 0 else "Second (output)"
            ax1.set_title(f"{label} layer of the MNIST HH network: input and voltage")
            fig.tight_layout()
            figs[name] = fig
        return figs


class InputTraces(AbstractExperiment):
    """Input currents and voltage traces of both layers of the MNIST HH network."""

    name = "hh-input-traces"
    title = "Input currents and voltage traces of the MNIST HH network over 100 ms"
    section = SECTION
    claims = (FEW_SPIKES,)

    def quick(self) -> TracesSettings:
        return TracesSettings()

    def full(self) -> TracesSettings:
        return TracesSettings()

    def tiny(self) -> TracesSettings:
        return TracesSettings(duration_ms=5.0, short_ms=1.0, hidden=8, shown=2)

    def run(self, settings, *, progress: Callable[[int], None] | None = None):
        import jax
        import jax.numpy as jnp

        from weakgrad.sim.network import Record, simulate

        s = settings
        net = _network(s.seed, s.hidden)
        x, _ = _digits(1, s.seed)
        steps = int(round(s.duration_ms / s.dt_ms))
        record = Record(spikes=True, voltages=True, currents=True)
        trace = simulate(
            net, jnp.asarray(x[0], jnp.float32), dt=s.dt_ms, steps=steps,
            key=jax.random.key(s.seed), record=record,
        )  # fmt: skip
        spikes = np.asarray(trace.spikes[0])
        short = int(round(s.short_ms / s.dt_ms))
        firing = spikes.sum(0) > 0
        n_fire = int(firing.sum())
        per = lambda c: float(c[firing].mean()) if n_fire else 0.0  # noqa: E731
        traces = {"time_ms": (np.arange(steps) + 1) * s.dt_ms}
        for layer in (0, 1):
            cur = np.asarray(trace.currents[layer])
            traces[f"current_{layer}"] = cur
            traces[f"voltage_{layer}"] = np.asarray(trace.voltages[layer])
            traces[f"spikes_{layer}"] = np.asarray(trace.spikes[layer])
            # The neurons with the largest mean input: the ones the digit drives.
            order = np.argsort(-cur.mean(0))
            traces[f"shown_{layer}"] = np.sort(order[: min(s.shown, cur.shape[1])])
        data = {
            "spikes_short": per(spikes[:short].sum(0)),
            "spikes_long": per(spikes.sum(0)),
            "firing": n_fire,
            "hidden": spikes.shape[1],
            "short_ms": s.short_ms,
            "long_ms": s.duration_ms,
        }
        if progress:
            progress(1)
        return _TracesResult(self, s, data, traces)


# ------------------------------------------------------------------ uniform weight shift


@dataclasses.dataclass(frozen=True)
class ShiftSettings(ExperimentSettings):
    """Every weight plus ``c`` for ``points`` values of ``c`` on [0, ``c_max``], ``steps``
    time steps at each dt of ``dts_ms`` (ms), on ``digits`` digits; the loss is softmax
    cross-entropy on the output layer's mean graded release (``readout``)."""

    dts_ms: tuple[float, ...] = (0.01, 0.05, 0.1)
    steps: int = 1000
    points: int = 101
    c_max: float = 1.0
    digits: int = 10
    hidden: int = 100
    readout: str = "release"


def total_variation_ratio(loss: np.ndarray) -> float:
    """Total variation of a curve over its range: 1 for a monotone curve, larger the more
    it goes up and down (0 for a flat one)."""
    loss = np.asarray(loss, np.float64)
    rng = float(np.ptp(loss))
    return float(np.sum(np.abs(np.diff(loss))) / rng) if rng > 0 else 0.0


def check_more_chaotic(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Total variation over range of the loss curve, per timeframe (shortest first): rising
    with the timeframe and at the longest at least 2x at the shortest: reproduced; longest
    above shortest: partly."""
    tv = [float(v) for v in data["tv_ratio"]]
    ms = [float(v) for v in data["duration_ms"]]
    monotone = all(b >= a for a, b in zip(tv, tv[1:], strict=False))
    verdict = (
        Verdict.REPRODUCED if monotone and tv[-1] >= 2 * tv[0]
        else Verdict.PARTLY if tv[-1] > tv[0] else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    parts = ", ".join(f"{m:g} ms: {v:.3g}" for m, v in zip(ms, tv, strict=True))
    return verdict, f"total variation / range of the loss along the shift: {parts}"


def check_autodiff_blows_up(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Largest |autodiff derivative| along the shift over the largest |slope between
    neighbouring grid points| of the same curve: at least 10 at the longest timeframe and
    larger there than at the shortest: reproduced; at least 10 at the longest: partly."""
    r = [float(v) for v in data["blowup_ratio"]]
    ms = [float(v) for v in data["duration_ms"]]
    verdict = (
        Verdict.REPRODUCED if r[-1] >= 10 and r[-1] > r[0]
        else Verdict.PARTLY if r[-1] >= 10 else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    parts = ", ".join(f"{m:g} ms: {v:.3g}" for m, v in zip(ms, r, strict=True))
    return verdict, f"max |autodiff dL/dc| / max |grid slope|: {parts}"


CHAOTIC = Claim(
    id="longer-timeframe-more-chaotic",
    section=SECTION,
    claim="Varying all weights uniformly from 0 to 1: as we increase the timeframe used to "
    "evaluate the loss (dt 0.01, 0.05, 0.1 ms at a fixed number of steps), the loss curve "
    "is much more chaotic and almost discontinuous at certain points.",
    measures="total variation / range of the loss along the shift per timeframe; rising "
    "with it and >= 2x at 100 ms vs 10 ms: reproduced; larger at 100 ms: partly.",
    check=check_more_chaotic,
)
BLOWUP = Claim(
    id="autodiff-gradients-blow-up",
    section=SECTION,
    claim="When we try to train this with conventional autodiff, the discontinuities and "
    "other features make the gradients blow up at certain points.",
    measures="max |autodiff derivative along the shift| / max |slope between neighbouring "
    "grid points|; >= 10 at 100 ms and above the 10 ms ratio: reproduced; >= 10 at 100 "
    "ms: partly.",
    check=check_autodiff_blows_up,
)


@dataclasses.dataclass(frozen=True)
class _ShiftResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: ShiftSettings
    data: Mapping[str, Any]
    curves: Mapping[str, np.ndarray]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv

        c = self.curves
        header = ["c"] + [
            f"{kind}_{ms:g}ms"
            for ms in self.data["duration_ms"]
            for kind in ("loss", "autodiff_dloss_dc")
        ]
        cols = [c["c"]]
        for i in range(len(self.data["duration_ms"])):
            cols += [c["loss"][i], c["derivative"][i]]
        write_csv(
            folder / "uniform_shift.csv", header, zip(*(x.tolist() for x in cols), strict=True)
        )

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        c, s = self.curves, self.settings
        ms = self.data["duration_ms"]
        colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(ms)))
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
        for i, (m, dt, col) in enumerate(zip(ms, s.dts_ms, colors, strict=True)):
            ax1.plot(c["c"], c["loss"][i], color=col, lw=1.2,
                     label=f"dt {dt:g} ms ({m:g} ms)")  # fmt: skip
            ax2.plot(c["c"], np.abs(c["derivative"][i]), color=col, lw=1)
        ax1.set_ylabel("loss (cross-entropy)")
        ax1.set_title(f"Loss along a uniform shift of all weights ({s.steps} steps)")
        ax1.legend(fontsize=8, loc="best")
        ax2.set_yscale("log")
        ax2.set_ylabel("|autodiff dL/dc|")
        ax2.set_xlabel("shift c added to every weight")
        fig.tight_layout()
        return {"uniform_shift": fig}


class UniformShift(AbstractExperiment):
    """The loss along a uniform shift of all weights at three timeframes."""

    name = "uniform-shift-timeframes"
    title = "Loss along a uniform weight shift at dt 0.01, 0.05, 0.1 ms"
    section = SECTION
    claims = (CHAOTIC, BLOWUP)

    def quick(self) -> ShiftSettings:
        return ShiftSettings(points=61, digits=4)

    def full(self) -> ShiftSettings:
        return ShiftSettings(points=201)

    def tiny(self) -> ShiftSettings:
        return ShiftSettings(steps=20, points=5, digits=2, hidden=6)

    def run(self, settings, *, progress: Callable[[int], None] | None = None):
        import jax
        import jax.numpy as jnp

        from weakgrad.tasks.mnist import mnist_objective

        s = settings
        net = _network(s.seed, s.hidden)
        x, y = _digits(s.digits, s.seed)
        cs = np.linspace(0.0, s.c_max, s.points)
        losses, derivs = [], []
        key = jax.random.key(s.seed)
        for dt in s.dts_ms:
            obj = mnist_objective(
                "hh", x, y, key=key, net=net, duration_ms=s.steps * dt, dt_ms=dt,
                readout=s.readout,
            )  # fmt: skip
            p0 = obj.params()

            def along(c, obj=obj, p0=p0):
                p = jax.tree.map(lambda w: w + c, p0)
                return obj(p, key)

            # Forward-mode derivative along the shift (one JVP per point).
            f = jax.jit(jax.vmap(lambda c, along=along: jax.jvp(along, (c,), (jnp.ones_like(c),))))
            loss, d = f(jnp.asarray(cs, jnp.float32))
            losses.append(np.asarray(loss, np.float64))
            derivs.append(np.asarray(d, np.float64))
            if progress:
                progress(1)
        h = float(cs[1] - cs[0]) if cs.size > 1 else 1.0
        ratio = [
            float(np.max(np.abs(d)) / max(np.max(np.abs(np.diff(lo))) / h, 1e-30))
            for lo, d in zip(losses, derivs, strict=True)
        ]
        data = {
            "duration_ms": np.asarray([s.steps * dt for dt in s.dts_ms]),
            "tv_ratio": np.asarray([total_variation_ratio(lo) for lo in losses]),
            "blowup_ratio": np.asarray(ratio),
        }
        curves = {"c": cs, "loss": np.stack(losses), "derivative": np.stack(derivs)}
        return _ShiftResult(self, s, data, curves)
