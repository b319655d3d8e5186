"""Neural Latents Benchmark (NLB) evaluation in weakgrad: co-smoothing bits per spike
(co-bps) and NLB-layout NWB files.

co-bps (Pei et al. 2021, "Neural Latents Benchmark '21", Sec. 3.2) scores predicted firing
rates of held-out neurons by the Poisson log-likelihood they gain over a null model that
predicts each neuron's mean rate, in bits per spike:

    co-bps = (LL(rates) - LL(null)) / (n_spikes * ln 2),
    LL(r) = sum over trials, bins, neurons of  n log r - r - log n!,

with ``r`` the expected spike count per bin and the null rate of a neuron its mean count
per bin over all evaluated trials and bins. 0: no better than the mean rate; the true rates
of a Poisson process score its mutual information with the counts (positive).
nlb_tools (the reference implementation) pins pandas <= 1.3.4 and does not install on
Python 3.11, so this is weakgrad's own, tested against a closed form.

An NLB-layout NWB file has a units table with a boolean ``heldout`` column and a trials
table whose rows carry an alignment event (e.g. ``move_onset_time``, seconds); trials are
cut around the event. :func:`read_nlb_nwb` bins them; :func:`write_nlb_nwb` writes one
(synthetic data, tests and examples).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from weakgrad.tasks.spike_trains import NwbFileError, NwbFileMissing

__all__ = [
    "poisson_log_likelihood",
    "bits_per_spike",
    "NlbData",
    "read_nlb_nwb",
    "write_nlb_nwb",
    "synthetic_nlb",
]


def _log_factorial(n: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(np.asarray(n, np.float64) + 1.0)


def poisson_log_likelihood(rates: np.ndarray, counts: np.ndarray) -> float:
    """``sum n log r - r - log n!`` over all entries; ``rates`` are expected counts per bin
    (> 0 where counts are > 0; a zero rate with a spike is -inf)."""
    r, n = np.asarray(rates, np.float64), np.asarray(counts, np.float64)
    if r.shape != n.shape:
        raise ValueError(f"rates {r.shape} and counts {n.shape} must have the same shape.")
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError("rates must be finite and >= 0 (expected spike counts per bin).")
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n > 0, n * np.log(r), 0.0)
    return float(np.sum(term - r - _log_factorial(n)))


def bits_per_spike(rates: np.ndarray, counts: np.ndarray) -> float:
    """co-bps of predicted ``rates`` for held-out ``counts``, both ``(trials, bins,
    neurons)`` (expected and observed spikes per bin); the null model is each neuron's mean
    count per bin over trials and bins."""
    n = np.asarray(counts, np.float64)
    if n.ndim != 3:
        raise ValueError(f"counts must be (trials, bins, neurons), got shape {n.shape}.")
    total = float(n.sum())
    if total <= 0:
        raise ValueError("the held-out counts hold no spike: bits per spike is undefined.")
    null = np.broadcast_to(n.mean(axis=(0, 1), keepdims=True), n.shape)
    gain = poisson_log_likelihood(rates, n) - poisson_log_likelihood(null, n)
    return gain / (total * np.log(2.0))


@dataclasses.dataclass(frozen=True)
class NlbData:
    """Binned trials of an NLB-layout file.

    Attributes:
        heldin, heldout: spike counts ``(trials, bins, neurons)`` of the held-in and the
            held-out units.
        bin_ms: bin width (ms); window_ms: the bins' span around the alignment event (ms).
    """

    heldin: np.ndarray
    heldout: np.ndarray
    bin_ms: float
    window_ms: tuple[float, float]


def read_nlb_nwb(
    path: str | Path,
    *,
    align: str = "move_onset_time",
    window_ms: tuple[float, float] = (-250.0, 450.0),
    bin_ms: float = 5.0,
) -> NlbData:
    """Bin the units of an NLB-layout NWB file into trials aligned to ``align`` (a trials
    column, seconds): bins of ``bin_ms`` over ``window_ms`` around the event. Units with
    ``heldout`` True are the held-out ones."""
    try:
        from pynwb import NWBHDF5IO
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "reading NWB files needs pynwb: pip install -e '.[nwb]'."
        ) from None
    lo, hi = window_ms
    if not (bin_ms > 0 and hi > lo):
        raise ValueError(f"need bin_ms > 0 and window_ms[1] > window_ms[0], got {bin_ms}, "
                         f"{window_ms}.")  # fmt: skip
    path = Path(path)
    if not path.is_file():
        raise NwbFileMissing(f"NWB file {path} does not exist.")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units, trials = nwb.units, nwb.trials
        if units is None or len(units) == 0:
            raise NwbFileError(f"NWB file {path} has no units table (spike times).")
        if "heldout" not in units.colnames:
            raise NwbFileError(
                f"NWB file {path}: the units table has no 'heldout' column (columns: "
                f"{', '.join(units.colnames)}); an NLB-layout file marks held-out units."
            )
        if trials is None or align not in trials.colnames:
            have = "no trials table" if trials is None else ", ".join(trials.colnames)
            raise NwbFileError(
                f"NWB file {path}: no trials column {align!r} to align to ({have}); pass "
                "align= one of the trial columns."
            )
        heldout = np.asarray(units["heldout"].data[:], bool)
        spikes = [np.asarray(units.get_unit_spike_times(i), np.float64) * 1e3
                  for i in range(len(units))]  # fmt: skip
        events = np.asarray(trials[align].data[:], np.float64) * 1e3
    edges = np.arange(lo, hi + bin_ms / 2, bin_ms)
    counts = np.zeros((events.size, edges.size - 1, len(spikes)), np.float32)
    for j, t in enumerate(spikes):
        for k, e in enumerate(events):
            counts[k, :, j] = np.histogram(t - e, bins=edges)[0]
    return NlbData(counts[..., ~heldout], counts[..., heldout], float(bin_ms), (lo, hi))


def synthetic_nlb(
    seed: int, *, trials: int = 40, bins: int = 60, heldin: int = 12, heldout: int = 4,
    bin_ms: float = 5.0, latents: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Poisson counts driven by smooth shared latents: ``(heldin_counts, heldout_counts,
    heldout_rates)``, each ``(trials, bins, neurons)``; the rates are the true expected
    counts per bin (what a perfect model predicts)."""
    rng = np.random.default_rng(seed)
    t = np.arange(bins) * bin_ms / 1e3
    phase = rng.uniform(0, 2 * np.pi, (trials, 1, latents))
    freq = rng.uniform(1.0, 4.0, (1, 1, latents))
    z = np.sin(2 * np.pi * freq * t[None, :, None] + phase)  # (trials, bins, latents)
    n = heldin + heldout
    w = rng.normal(0.0, 0.8, (latents, n))
    base = np.log(rng.uniform(10.0, 40.0, n) * bin_ms / 1e3)  # 10-40 Hz
    rates = np.exp(base + z @ w)
    counts = rng.poisson(rates).astype(np.float32)
    return counts[..., :heldin], counts[..., heldin:], rates[..., heldin:]


def write_nlb_nwb(
    path: str | Path, heldin: np.ndarray, heldout: np.ndarray, *, bin_ms: float = 5.0,
    gap_ms: float = 200.0, align_offset_ms: float = 100.0,
) -> Path:  # fmt: skip
    """Write binned ``(trials, bins, neurons)`` counts as an NLB-layout NWB file: one unit
    per neuron (``heldout`` column), spikes at the bins' centres, trials separated by
    ``gap_ms`` with a ``move_onset_time`` ``align_offset_ms`` after each trial's start."""
    from datetime import UTC, datetime

    from pynwb import NWBHDF5IO, NWBFile

    from weakgrad.io import atomic_path

    counts = np.concatenate([heldin, heldout], axis=2)
    n_trials, n_bins, n_units = counts.shape
    span = n_bins * bin_ms
    starts = np.arange(n_trials) * (span + gap_ms)
    nwb = NWBFile(
        session_description="synthetic NLB-layout data (weakgrad)",
        identifier=f"weakgrad-synthetic-{n_trials}x{n_bins}x{n_units}",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    nwb.add_unit_column(name="heldout", description="held out from the model's input")
    nwb.add_trial_column(name="move_onset_time", description="alignment event (s)")
    for s in starts:
        nwb.add_trial(start_time=s / 1e3, stop_time=(s + span) / 1e3,
                      move_onset_time=(s + align_offset_ms) / 1e3)  # fmt: skip
    centres = (np.arange(n_bins) + 0.5) * bin_ms
    for j in range(n_units):
        times = [np.repeat(s + centres, counts[k, :, j].astype(int)) for k, s in enumerate(starts)]
        nwb.add_unit(spike_times=np.concatenate(times) / 1e3, heldout=bool(j >= heldin.shape[2]))
    path = Path(path)
    with atomic_path(path) as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwb)
    return path
