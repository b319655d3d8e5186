"""Study 000, "Signal Processing Approach", "Cross-Correlation": the cross-correlation
``(f * g)(lag) = integral f(t) g(t + lag) dt`` of spike trains and of their filtered
(continuously varying) versions, and the loss ``integral y(t) y*(t + lag) dt`` built on
it (:class:`weakgrad.tasks.spike_trains.CrossCorrelation` with ``lag_ms``). A target that
repeats the output ``shift_ms`` later is the study's "g is f shifted to the right"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = ["LagSettings", "CrossCorrelationLag", "check_peak_at_shift"]

SECTION = "Cross-Correlation"


@dataclasses.dataclass(frozen=True)
class LagSettings(ExperimentSettings):
    """``cells`` Poisson trains at ``rate_hz`` over ``duration_ms`` (step ``dt_ms``); the
    target is the same trains ``shift_ms`` later; lags on +/- ``max_lag_ms`` in steps of
    ``lag_step_ms``; filters of ``taus_ms`` (a short one: nearly the spikes themselves; a
    long one: a continuously varying signal)."""

    cells: int = 5
    rate_hz: float = 20.0
    duration_ms: float = 1000.0
    dt_ms: float = 0.1
    shift_ms: float = 5.0
    max_lag_ms: float = 20.0
    lag_step_ms: float = 0.5
    taus_ms: tuple[float, ...] = (1.0, 10.0)


def check_peak_at_shift(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Where the cross-correlation of the trains and their shifted copy peaks, per filter:
    within one lag step of the shift for every filter: reproduced; for some: partly."""
    shift, step = float(data["shift_ms"]), float(data["lag_step_ms"])
    peaks = [float(p) for p in data["peak_lag_ms"]]
    hits = [abs(p - shift) <= step + 1e-9 for p in peaks]
    verdict = (
        Verdict.REPRODUCED if all(hits) else Verdict.PARTLY if any(hits)
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    parts = ", ".join(
        f"filter {float(t):g} ms: {p:g} ms" for t, p in zip(data["taus_ms"], peaks, strict=True)
    )
    return verdict, (
        f"peak of the cross-correlation (shift {shift:g} ms): {parts}; loss at lag "
        f"{shift:g} ms {float(data['loss_at_shift']):.3g} vs {float(data['loss_at_zero']):.3g} "
        "at lag 0"
    )


PEAK = Claim(
    id="cross-correlation-peaks-at-lag",
    section=SECTION,
    claim="If g is f shifted to the right by the lag, the cross-correlation of f and g is "
    "maximal at that lag; for continuously varying signals it decays away from that lag "
    "and has its maximum there.",
    measures="the normalised cross-correlation of Poisson trains and their copy 5 ms later, "
    "filtered at 1 ms (spikes) and 10 ms (continuous): peak within one lag step (0.5 ms) of "
    "the shift for both filters: reproduced; for one: partly.",
    check=check_peak_at_shift,
)


@dataclasses.dataclass(frozen=True)
class _LagResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: LagSettings
    data: Mapping[str, Any]
    curves: Mapping[str, np.ndarray]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv

        c, s = self.curves, self.settings
        header = ["lag_ms"] + [f"correlation_tau_{t:g}ms" for t in s.taus_ms]
        cols = [c["lags_ms"], *c["correlation"]]
        write_csv(folder / "cross_correlation.csv", header,
                  zip(*(x.tolist() for x in cols), strict=True))  # fmt: skip

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        c, s = self.curves, self.settings
        fig, ax = plt.subplots(figsize=(7, 4))
        colors = plt.cm.viridis(np.linspace(0.0, 0.8, len(s.taus_ms)))
        for t, y, col in zip(s.taus_ms, c["correlation"], colors, strict=True):
            ax.plot(c["lags_ms"], y, color=col, marker=".", ms=3, label=f"filter tau {t:g} ms")
        ax.axvline(s.shift_ms, color="0.5", ls=":", label=f"shift {s.shift_ms:g} ms")
        ax.set_xlabel("lag (ms)")
        ax.set_ylabel("normalised cross-correlation")
        ax.set_title(f"{s.cells} Poisson trains ({s.rate_hz:g} Hz) and their copy "
                     f"{s.shift_ms:g} ms later")  # fmt: skip
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        return {"cross_correlation": fig}


class CrossCorrelationLag(AbstractExperiment):
    """The cross-correlation of spike trains with a delayed copy against the lag."""

    name = "cross-correlation-lag"
    title = "Cross-correlation with a lag: a delayed copy peaks at its delay"
    section = SECTION
    claims = (PEAK,)

    def quick(self) -> LagSettings:
        return LagSettings()

    def full(self) -> LagSettings:
        return LagSettings()

    def tiny(self) -> LagSettings:
        return LagSettings(cells=2, duration_ms=100.0, max_lag_ms=6.0, lag_step_ms=1.0)

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _LagResult:
        import jax
        import jax.numpy as jnp

        from weakgrad.tasks.spike_trains import (
            CrossCorrelation,
            correlation_vs_lag,
            synthetic_spike_trains,
        )

        s = settings
        out = synthetic_spike_trains(
            jax.random.key(s.seed), n_cells=s.cells, duration_ms=s.duration_ms,
            dt_ms=s.dt_ms, rates_hz=s.rate_hz,
        )  # fmt: skip
        k = int(round(s.shift_ms / s.dt_ms))
        target = jnp.roll(out, k, axis=0).at[:k].set(0.0)
        lags = np.arange(-s.max_lag_ms, s.max_lag_ms + s.lag_step_ms / 2, s.lag_step_ms)
        curves = [
            correlation_vs_lag(out, target, dt_ms=s.dt_ms, tau_ms=t, lags_ms=lags)
            for t in s.taus_ms
        ]
        tau = s.taus_ms[0]
        data = {
            "shift_ms": s.shift_ms,
            "lag_step_ms": s.lag_step_ms,
            "taus_ms": np.asarray(s.taus_ms),
            "peak_lag_ms": np.asarray([lags[int(np.argmax(c))] for c in curves]),
            "loss_at_shift": float(CrossCorrelation(tau, s.dt_ms, s.shift_ms)(out, target)),
            "loss_at_zero": float(CrossCorrelation(tau, s.dt_ms)(out, target)),
        }
        if progress:
            progress(1)
        return _LagResult(self, s, data, {"lags_ms": lags, "correlation": np.stack(curves)})
