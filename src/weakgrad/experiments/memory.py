"""Seed 004, "Optimal synaptic memory consolidation" (Benna & Fusi 2016, "Computational
principles of synaptic memory consolidation", Nat. Neurosci. 19:1697-1706): the chain
model's memory signal, noise and SNR over time against the ``1/sqrt(t)`` law, and its
memory capacity against the number of synapses ``N`` for chains of 1 to ``max_chain``
variables, against ``N / log N`` and the single-variable (exponential) synapse.

The model is linear, so the curves and capacities are closed forms
(:mod:`weakgrad.memory.benna_fusi`: the trace as a mixture of the chain's modes, the noise
as a sum of squared traces); the stochastic chain (``N`` synapses driven by +/-1 memories,
one ``lax.scan``) is simulated as well and drawn against them.
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
    "MemorySettings",
    "BennaFusiMemory",
    "check_inverse_sqrt_decay",
    "check_capacity_n_over_log_n",
    "check_log_n_variables",
    "check_beats_exponential",
    "check_naive_needs_sqrt_n_variables",
    "spread",
]

SECTION = "Optimal synaptic memory (seed 004)"


@dataclasses.dataclass(frozen=True)
class MemorySettings(ExperimentSettings):
    """Closed forms: SNR(t) of the geometric chains of ``chain_lengths`` variables at
    ``snr_synapses`` synapses, its power law fitted over ``fit_window`` (memories) on the
    ``long_chain``; capacities for ``synapse_counts`` and every chain of 1..``max_chain``
    variables, and for ``homogeneous_counts`` and the homogeneous chain (the naive discrete
    heat equation: every ``C_k = 1``, ``g = 1/8``) of up to ``homogeneous_max_chain``
    variables (about four lengths per doubling). Simulation: ``sim_trials`` runs of
    ``sim_synapses`` synapses on a chain of ``sim_chain`` variables, ``sim_burn_in``
    memories before the tracked one and ``sim_steps`` after."""

    chain_lengths: tuple[int, ...] = (1, 4, 8, 12, 16)
    long_chain: int = 16
    snr_synapses: float = 1e8
    fit_window: tuple[float, float] = (10.0, 1e5)
    synapse_counts: tuple[float, ...] = tuple(float(10**e) for e in np.arange(2, 10.01, 0.5))
    max_chain: int = 24
    homogeneous_counts: tuple[float, ...] = tuple(float(10**e) for e in np.arange(2, 6.01, 0.5))
    homogeneous_max_chain: int = 1024
    sim_chain: int = 8
    sim_synapses: int = 512
    sim_trials: int = 128
    sim_burn_in: int = 2000
    sim_steps: int = 2000


def spread(x: Any) -> float:
    """``max / min`` of positive values (inf if any is <= 0): 1 for a constant."""
    x = np.asarray(x, np.float64)
    return float(x.max() / x.min()) if np.all(x > 0) else float("inf")


def _loglog_slope(x: Any, y: Any) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def check_inverse_sqrt_decay(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Exponent of the long chain's steady-state SNR(t) fitted over the window (at least two
    decades): within 0.1 of -1/2 reproduces, within 0.2 partly; a window under two decades
    cannot reproduce it (partly at best)."""
    e = float(data["fit_exponent"])
    lo, hi = (float(v) for v in data["fit_window"])
    decades = np.log10(hi / lo)
    err = abs(e + 0.5)
    measured = (
        f"SNR(t) ~ t^{e:.3f} over t = {lo:.3g}..{hi:.3g} memories ({decades:.1f} decades), "
        f"{int(data['long_chain'])}-variable chain"
    )
    if err <= 0.1 and decades >= 2:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if err <= 0.2 else Verdict.NOT_REPRODUCED), measured


def check_capacity_n_over_log_n(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Capacity of the best chain for each N (over 1..max_chain variables) divided by
    N / ln N, by N and by sqrt(N): reproduced if N / ln N gives the flattest ratio (smallest
    max/min over the N range) and that ratio stays within a factor 2; partly if only the
    first; not reproduced otherwise."""
    n = np.asarray(data["synapse_counts"], np.float64)
    cap = np.asarray(data["best_capacity"], np.float64)
    s_log = spread(cap * np.log(n) / n)
    s_lin = spread(cap / n)
    s_sqrt = spread(cap / np.sqrt(n))
    flattest = s_log < s_lin and s_log < s_sqrt
    measured = (
        f"max/min over N = {n.min():.3g}..{n.max():.3g} of capacity / (N/ln N): {s_log:.3g}; "
        f"/ N: {s_lin:.3g}; / sqrt(N): {s_sqrt:.3g}"
    )
    if flattest and s_log <= 2.0:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if flattest else Verdict.NOT_REPRODUCED), measured


def check_log_n_variables(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The number of variables m*(N) of the chain with the largest capacity: reproduced if
    it grows linearly in log N (least-squares line against log10 N, rising, no point more
    than 1.5 variables off it) and never reaches ``max_chain`` (where the search stops);
    partly if it rises but more slowly than sqrt(N) by a factor 10 over the range without
    being linear in log N; not reproduced otherwise."""
    n = np.asarray(data["synapse_counts"], np.float64)
    m = np.asarray(data["best_m"], np.float64)
    top = int(data["max_chain"])
    x = np.log10(n)
    slope, icpt = np.polyfit(x, m, 1)
    resid = float(np.max(np.abs(m - (slope * x + icpt))))
    capped = bool(np.any(m >= top))
    measured = (
        f"m* from {int(m[0])} (N = {n[0]:.3g}) to {int(m[-1])} (N = {n[-1]:.3g}): "
        f"{slope:.3g} variables per decade of N, largest deviation from the line {resid:.3g}"
        + (f"; reaches the search's limit {top}" if capped else "")
    )
    if slope > 0 and resid <= 1.5 and not capped:
        return Verdict.REPRODUCED, measured
    slower = m[-1] / max(m[0], 1.0) < np.sqrt(n[-1] / n[0]) / 10
    return (Verdict.PARTLY if slope > 0 and slower else Verdict.NOT_REPRODUCED), measured


def check_beats_exponential(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Log-log slope of capacity against N: the best chain's at least 0.8 and the
    exponential synapse's (at the chain's initial SNR) at most 0.6 reproduce the near-linear
    vs square-root (or slower) scaling; the chain's capacity larger at every N but the slopes
    not so separated: partly; otherwise not reproduced."""
    n = np.asarray(data["synapse_counts"], np.float64)
    chain = np.asarray(data["best_capacity"], np.float64)
    expo = np.asarray(data["exp_capacity_same_snr"], np.float64)
    a, b = _loglog_slope(n, chain), _loglog_slope(n, expo)
    measured = (
        f"capacity ~ N^{a:.3g} (best chain) vs N^{b:.3g} (exponential synapse at the same "
        f"initial SNR); at N = {n[-1]:.3g}: {chain[-1]:.3g} vs {expo[-1]:.3g} memories"
    )
    if "exp_capacity_free" in data:  # context only: no constraint on its initial SNR
        free = np.asarray(data["exp_capacity_free"], np.float64)
        measured += (
            f"; the exponential synapse with its best tau (initial SNR ~ 1.6) reaches "
            f"{free[-1]:.3g}"
        )
    if a >= 0.8 and b <= 0.6:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if np.all(chain > expo) else Verdict.NOT_REPRODUCED), measured


def check_naive_needs_sqrt_n_variables(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Log-log slope of the homogeneous chain's best length m*(N) against N: within 0.15 of
    1/2 reproduces (below the search's limit), within 0.25 partly; otherwise (or a slope
    reproduced only because m* sits at the limit) not reproduced."""
    n = np.asarray(data["homogeneous_counts"], np.float64)
    m = np.asarray(data["homogeneous_best_m"], np.float64)
    top = int(data["homogeneous_max_chain"])
    slope = _loglog_slope(n, m)
    capped = bool(np.any(m >= top))
    measured = (
        f"homogeneous chain: m* ~ N^{slope:.3g}, from {int(m[0])} (N = {n[0]:.3g}) to "
        f"{int(m[-1])} (N = {n[-1]:.3g})"
        + (f"; reaches the search's limit {top}" if capped else "")
    )
    if abs(slope - 0.5) <= 0.15 and not capped:
        return Verdict.REPRODUCED, measured
    if abs(slope - 0.5) <= 0.25 and not capped:
        return Verdict.PARTLY, measured
    return Verdict.NOT_REPRODUCED, measured


DECAY = Claim(
    id="memory-trace-decays-as-inverse-sqrt-t",
    section=SECTION,
    claim="The heat equation with exponentially increasing capacity and decreasing "
    "conductivity along the chain displays the desired 1/sqrt(t) decay of the memory "
    "signal (and SNR) with only ~log N discretised variables.",
    measures="least-squares exponent of the steady-state SNR(t) of the 16-variable geometric "
    "chain (C_k = 2^(k-1), g_(k,k+1) = 2^(-k-2)) over t = 10..1e5 memories; reproduced "
    "within 0.1 of -0.5 over at least two decades, partly within 0.2.",
    check=check_inverse_sqrt_decay,
)
CAPACITY = Claim(
    id="capacity-near-n-over-log-n",
    section=SECTION,
    claim="A system that displays the 1/sqrt(t) decay can achieve the almost extensive "
    "N / log N memory capacity (capacity: the time at which SNR(t) drops to 1).",
    measures="capacity of the best chain (1..max_chain variables) per N, divided by N/ln N, "
    "N and sqrt(N): reproduced if N/ln N gives the flattest ratio (max/min over N) and it is "
    "within a factor 2; partly if flattest only.",
    check=check_capacity_n_over_log_n,
)
VARIABLES = Claim(
    id="log-n-variables-suffice",
    section=SECTION,
    claim="The inhomogeneous heat equation requires only ~log N variables (instead of "
    "~sqrt(N)) to implement the 1/sqrt(t) decay in a discretised version.",
    measures="m*(N), the chain length with the largest capacity: reproduced if linear in "
    "log10 N (rising, every point within 1.5 variables of the fitted line) and below the "
    "search's limit; partly if it rises 10x slower than sqrt(N).",
    check=check_log_n_variables,
)
NAIVE = Claim(
    id="naive-heat-equation-needs-sqrt-n-variables",
    section=SECTION,
    claim="The solution to the (homogeneous) heat equation already displays the 1/sqrt(t) "
    "decay, but any discretised version of it would require too many variables (~sqrt(N)) "
    "to achieve it over a sufficiently long time.",
    measures="m*(N), the length with the largest capacity of the homogeneous chain (C_k = 1, "
    "g = 1/8), N = 1e2..1e6: log-log slope within 0.15 of 0.5 reproduced, within 0.25 partly "
    "(below the search's limit).",
    check=check_naive_needs_sqrt_n_variables,
)
EXPONENTIAL = Claim(
    id="capacity-beats-exponential-synapse",
    section=SECTION,
    claim="The memory capacity scales almost linearly with the number of synapses, a "
    "substantial improvement over the square-root scaling of previous models (Benna & Fusi "
    "2016, abstract; seed 004: 'nearly extensive memory capacity').",
    measures="log-log slopes of capacity vs N over the N range: best chain >= 0.8 and the "
    "single-variable (exponential) synapse with the chain's initial SNR <= 0.6: reproduced; "
    "chain larger at every N only: partly.",
    check=check_beats_exponential,
)


def _exp_tau_for_snr0(snr0: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``tau`` of the exponential synapse whose steady-state ``SNR(0)`` at ``N`` synapses is
    ``snr0``: ``SNR(0)^2 = N (1 - q) / q`` with ``q = exp(-2 / tau)``."""
    return 2.0 / np.log1p(snr0**2 / n)


def _best_exponential(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exponential synapse's largest capacity over ``tau`` (no constraint on its initial
    SNR): ``(tau, capacity)`` per N, by a golden-section search in log tau."""
    from weakgrad.memory import exponential_capacity

    out_tau, out_cap = [], []
    for nn in n:
        lo, hi = 0.0, np.log(10.0 * nn)
        f = lambda lt, nn=nn: float(exponential_capacity(np.exp(lt), nn))  # noqa: E731
        gr = (np.sqrt(5.0) - 1) / 2
        a, b = hi - gr * (hi - lo), lo + gr * (hi - lo)
        fa, fb = f(a), f(b)
        for _ in range(100):
            if fa < fb:
                lo, a, fa = a, b, fb
                b = lo + gr * (hi - lo)
                fb = f(b)
            else:
                hi, b, fb = b, a, fa
                a = hi - gr * (hi - lo)
                fa = f(a)
        t = float(np.exp(0.5 * (lo + hi)))
        out_tau.append(t)
        out_cap.append(float(exponential_capacity(t, nn)))
    return np.asarray(out_tau), np.asarray(out_cap)


def memory_study(s: MemorySettings, progress: Callable[[int], None] | None = None) -> dict:
    """Every number of the experiment (closed forms and the simulation) as a dict of floats
    and arrays."""
    import jax

    from weakgrad.memory import (
        BennaFusiChain,
        capacity,
        exponential_capacity,
        fit_exponent,
        memory_noise,
        memory_signal,
        simulate,
        snr,
    )

    geo = BennaFusiChain.geometric
    ages = np.unique(np.concatenate([[0.0], np.logspace(0, 10, 201)]))
    snr_curves = np.stack([snr(geo(m), ages, s.snr_synapses) for m in s.chain_lengths])
    lo, hi = s.fit_window
    exponent, prefactor = fit_exponent(ages, snr(geo(s.long_chain), ages, s.snr_synapses), lo, hi)

    n = np.asarray(s.synapse_counts, np.float64)
    lengths = np.arange(1, s.max_chain + 1)
    caps = np.stack([capacity(geo(int(m)), n) for m in lengths])  # (max_chain, N)
    best = np.argmax(caps, axis=0)
    best_cap = caps[best, np.arange(n.size)]
    best_m = lengths[best]
    snr0 = np.asarray([float(snr(geo(int(m)), 0.0, nn)) for m, nn in zip(best_m, n, strict=True)])
    tau_same = _exp_tau_for_snr0(snr0, n)
    exp_same = exponential_capacity(tau_same, n)
    exp_sqrt = exponential_capacity(np.sqrt(n), n)
    tau_free, exp_free = _best_exponential(n)

    hn = np.asarray(s.homogeneous_counts, np.float64)
    top = int(s.homogeneous_max_chain)
    h_lengths = np.unique(np.round(2.0 ** np.arange(0.0, np.log2(top) + 1e-9, 0.25)).astype(int))
    h_lengths = np.unique(np.append(h_lengths, top))
    h_caps = np.stack([capacity(geo(int(m), ratio=1.0), hn) for m in h_lengths])
    h_best = np.argmax(h_caps, axis=0)
    if progress is not None:
        progress(1)

    chain = geo(s.sim_chain)
    sim = simulate(
        chain,
        s.sim_synapses,
        s.sim_steps,
        key=jax.random.key(s.seed),
        trials=s.sim_trials,
        burn_in=s.sim_burn_in,
    )
    a = sim.ages
    sim_hi = float(min(s.sim_steps, 1000.0))
    sim_exponent = fit_exponent(a, sim.signal(), 10.0, sim_hi)[0] if sim_hi > 20 else float("nan")
    if progress is not None:
        progress(1)
    return {
        "ages": ages,
        "chain_lengths": np.asarray(s.chain_lengths),
        "snr_curves": snr_curves,
        "snr_synapses": float(s.snr_synapses),
        "long_chain": int(s.long_chain),
        "fit_window": (float(lo), float(hi)),
        "fit_exponent": float(exponent),
        "fit_prefactor": float(prefactor),
        "synapse_counts": n,
        "capacities": caps,
        "best_capacity": best_cap,
        "best_m": best_m,
        "max_chain": int(s.max_chain),
        "best_snr0": snr0,
        "exp_tau_same_snr": tau_same,
        "exp_capacity_same_snr": exp_same,
        "exp_capacity_sqrt_tau": exp_sqrt,
        "exp_tau_free": tau_free,
        "exp_capacity_free": exp_free,
        "homogeneous_counts": hn,
        "homogeneous_lengths": h_lengths,
        "homogeneous_best_m": h_lengths[h_best],
        "homogeneous_best_capacity": h_caps[h_best, np.arange(hn.size)],
        "homogeneous_max_chain": top,
        "sim_chain": int(s.sim_chain),
        "sim_synapses": int(s.sim_synapses),
        "sim_ages": a,
        "sim_signal": sim.signal(),
        "sim_signal_error": sim.signal_error(),
        "sim_noise": sim.noise(),
        "sim_exponent": float(sim_exponent),
        "theory_signal": memory_signal(chain, a),
        "theory_noise": memory_noise(chain, a, s.sim_synapses, past=s.sim_burn_in),
    }


_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


@dataclasses.dataclass(frozen=True)
class _MemoryResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: MemorySettings
    data: Mapping[str, Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json, write_npz

        d = self.data
        arrays = {k: np.asarray(v) for k, v in d.items() if np.ndim(v) > 0}
        write_npz(folder / "memory.npz", **arrays)
        rows = [
            [n, m, c, e, q]
            for n, m, c, e, q in zip(
                d["synapse_counts"],
                d["best_m"],
                d["best_capacity"],
                d["exp_capacity_same_snr"],
                d["exp_capacity_free"],
                strict=True,
            )
        ]
        write_csv(
            folder / "capacity.csv",
            [
                "n_synapses",
                "best_m",
                "best_capacity",
                "exp_capacity_same_snr0",
                "exp_capacity_free",
            ],
            rows,
        )
        scalars = {k: v for k, v in d.items() if np.ndim(v) == 0}
        scalars["fit_window"] = list(d["fit_window"])
        write_json(folder / "memory.json", scalars)

    def figures(self) -> dict[str, Any]:
        return {
            "snr": self._snr_figure(),
            "signal_noise": self._sim_figure(),
            "capacity": self._capacity_figure(),
            "variables": self._variables_figure(),
        }

    def _snr_figure(self):
        import matplotlib.pyplot as plt

        d = self.data
        fig, ax = plt.subplots(figsize=(7, 4.5))
        t = np.asarray(d["ages"])
        pos = t > 0
        for i, (m, curve) in enumerate(zip(d["chain_lengths"], d["snr_curves"], strict=True)):
            label = f"m = {int(m)}" + (" (exponential)" if int(m) == 1 else "")
            ax.loglog(t[pos], np.asarray(curve)[pos], color=_COLOURS[i % 6], label=label)
        lo, hi = d["fit_window"]
        w = (t >= lo) & (t <= hi)
        ax.loglog(
            t[w],
            d["fit_prefactor"] * t[w] ** d["fit_exponent"],
            color="k",
            ls="--",
            label=f"fit m = {d['long_chain']}: t^{d['fit_exponent']:.3f}",
        )
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":", label="SNR = 1")
        ax.set_ylim(0.1, 3.0 * float(np.max(d["snr_curves"])))
        ax.set_xlabel("age of the memory t (memories since it was stored)")
        ax.set_ylabel("SNR (dimensionless)")
        ax.set_title(f"Benna-Fusi chains, N = {d['snr_synapses']:.3g} synapses, steady state")
        ax.legend(fontsize=8, loc="upper right")
        return fig

    def _sim_figure(self):
        import matplotlib.pyplot as plt

        d = self.data
        fig, ax = plt.subplots(figsize=(7, 4.5))
        a = np.asarray(d["sim_ages"])
        idx = np.unique(np.round(np.logspace(0, np.log10(max(a[-1], 1)), 30)).astype(int))
        idx = idx[idx < a.size]
        ax.loglog(a[1:], d["theory_signal"][1:], color="tab:blue", label="signal, closed form")
        ax.errorbar(
            a[idx],
            d["sim_signal"][idx],
            yerr=d["sim_signal_error"][idx],
            fmt="o",
            ms=3,
            color="tab:cyan",
            label="signal, simulated (mean +/- s.e.)",
        )
        ax.loglog(a[1:], d["theory_noise"][1:], color="tab:red", label="noise, closed form")
        ax.loglog(
            a[idx],
            d["sim_noise"][idx],
            "s",
            ms=3,
            color="tab:orange",
            label="noise, simulated (s.d. over runs)",
        )
        ax.set_xlabel("age of the memory t (memories since it was stored)")
        ax.set_ylabel("overlap with the memory (charge units)")
        ax.set_title(
            f"m = {d['sim_chain']} chain, N = {d['sim_synapses']} synapses: simulation vs "
            "closed form"
        )
        ax.legend(fontsize=8, loc="lower left")
        return fig

    def _capacity_figure(self):
        import matplotlib.pyplot as plt

        d = self.data
        n = np.asarray(d["synapse_counts"])
        caps = np.asarray(d["capacities"])
        fig, ax = plt.subplots(figsize=(7.5, 5))
        shown = [m for m in (2, 4, 8, 12, 16, 20) if m <= caps.shape[0]]
        for i, m in enumerate(shown):
            c = caps[m - 1]
            ok = c > 0
            ax.loglog(n[ok], c[ok], color=_COLOURS[i % 6], lw=1, label=f"chain m = {m}")
        ax.loglog(n, d["best_capacity"], "k-o", ms=3, lw=2, label="best chain (m*)")
        ref = n / np.log(n)
        k = float(np.median(d["best_capacity"] / ref))
        ax.loglog(
            n, k * ref, color="tab:cyan", ls="--", lw=1.5, zorder=5, label=f"{k:.2g} x N / ln N"
        )
        ax.loglog(
            n,
            d["exp_capacity_free"],
            color="tab:olive",
            ls="-.",
            label="exponential, best tau (SNR(0) ~ 1.6)",
        )
        ax.loglog(
            n,
            d["exp_capacity_sqrt_tau"],
            color="tab:pink",
            ls="-.",
            label="exponential, tau = sqrt(N)",
        )
        es = np.asarray(d["exp_capacity_same_snr"])
        ok = es > 0
        ax.loglog(
            n[ok], es[ok], color="tab:gray", ls="-.", label="exponential, same SNR(0) as best chain"
        )
        ax.set_xlabel("number of synapses N")
        ax.set_ylabel("memory capacity (memories until SNR = 1)")
        ax.set_title("memory capacity vs N (steady state)")
        ax.legend(fontsize=7, loc="upper left")
        return fig

    def _variables_figure(self):
        import matplotlib.pyplot as plt

        d = self.data
        fig, ax = plt.subplots(figsize=(7, 4.5))
        n, hn = np.asarray(d["synapse_counts"]), np.asarray(d["homogeneous_counts"])
        ax.loglog(
            n,
            d["best_m"],
            "o-",
            color="tab:blue",
            ms=4,
            label="geometric chain (C_k = 2^(k-1), g = 2^(-k-2))",
        )
        ax.loglog(
            hn,
            d["homogeneous_best_m"],
            "s-",
            color="tab:red",
            ms=4,
            label="homogeneous chain (C_k = 1, g = 1/8)",
        )
        ax.loglog(n, np.log(n) / np.log(4.0), color="tab:cyan", ls="--", label="log_4 N")
        k = float(np.median(d["homogeneous_best_m"] / np.sqrt(hn)))
        ax.loglog(hn, k * np.sqrt(hn), color="tab:orange", ls="--", label=f"{k:.2g} sqrt(N)")
        ax.set_xlabel("number of synapses N")
        ax.set_ylabel("variables m* of the chain with the largest capacity")
        ax.set_title("chain length needed: ~log N (geometric) vs ~sqrt(N) (homogeneous)")
        ax.legend(fontsize=8, loc="upper left")
        return fig


class BennaFusiMemory(AbstractExperiment):
    """The Benna-Fusi chain: SNR(t) against 1/sqrt(t), capacity against N / log N and the
    exponential synapse, the stochastic chain against the closed forms."""

    name = "benna-fusi-memory"
    title = "Benna-Fusi complex synapse: 1/sqrt(t) decay and N / log N capacity"
    section = SECTION
    claims = (DECAY, CAPACITY, VARIABLES, NAIVE, EXPONENTIAL)

    def quick(self) -> MemorySettings:
        return MemorySettings()

    def full(self) -> MemorySettings:
        return MemorySettings(sim_synapses=1024, sim_trials=256, sim_burn_in=4000, sim_steps=4000)

    def tiny(self) -> MemorySettings:
        return MemorySettings(
            chain_lengths=(1, 4),
            long_chain=6,
            fit_window=(10.0, 1e3),
            synapse_counts=(1e2, 1e3, 1e4),
            max_chain=6,
            homogeneous_counts=(1e2, 1e3),
            homogeneous_max_chain=32,
            sim_chain=3,
            sim_synapses=32,
            sim_trials=8,
            sim_burn_in=20,
            sim_steps=30,
        )

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _MemoryResult:
        return _MemoryResult(self, settings, memory_study(settings, progress))
