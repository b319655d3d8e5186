"""Spike-train replication (study 001, "First Steps"): feed the spike trains of a few cells
into a network of HH neurons and train it to reproduce them.

- :func:`synthetic_spike_trains`: Poisson trains of ``n`` cells with given rates and a
  pairwise correlation (a shared "mother" train whose spikes each cell copies with
  probability ``correlation``, plus independent spikes to keep the rate).
- :func:`read_nwb_units`: the units table (spike times) of a Neurodata Without Borders file,
  binned on the simulation grid, so Neural Latents Benchmark data can be dropped in.
- Losses on spike trains (``(steps, n)`` arrays of 0/1 per step of ``dt`` ms):
  :class:`VanRossum` (van Rossum, Neural Comput. 2001) and :class:`CrossCorrelation`.
- :func:`spike_train_objective`: a network, input trains and target trains bound into a
  :class:`~weakgrad.objectives.network.NetworkObjective` (readout: the last layer's spike
  trains) that every estimator trains, weight-space and node perturbation and surrogate
  gradients alike (the study: regression sampling, S = 900, alternating layers, dt = 0.1
  ms, a 10 x 30 x 30 x 10 network).
"""

from __future__ import annotations

import abc
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.errors import ConfigError
from weakgrad.objectives.losses import AbstractLoss
from weakgrad.objectives.network import NetworkObjective, SpikeTrains
from weakgrad.sim.network import Network

__all__ = [
    "NwbFileError",
    "NwbFileMissing",
    "synthetic_spike_trains",
    "read_nwb_units",
    "exponential_filter",
    "VanRossum",
    "CrossCorrelation",
    "normalised_correlation",
    "correlation_vs_lag",
    "spike_train_objective",
    "all_spike_losses",
]


def synthetic_spike_trains(
    key: Array,
    *,
    n_cells: int = 10,
    duration_ms: float = 200.0,
    dt_ms: float = 0.1,
    rates_hz: float | Array = 20.0,
    correlation: float = 0.0,
) -> Array:
    """``(steps, n_cells)`` float 0/1 spike trains; cell ``i`` fires at ``rates_hz[i]`` and two
    cells of equal rate share a fraction ``correlation`` (in [0, 1]) of their spikes (a
    fraction ``correlation * rate_j / max rate`` in general)."""
    if not 0 <= correlation <= 1:
        raise ValueError(f"correlation must be in [0, 1], got {correlation}.")
    steps = int(round(duration_ms / dt_ms))
    if steps < 1 or n_cells < 1:
        raise ValueError(
            f"need duration_ms >= dt_ms and n_cells >= 1, got {duration_ms}, {n_cells}."
        )
    rates = jnp.broadcast_to(jnp.asarray(rates_hz, jnp.float32), (n_cells,))
    p = rates * dt_ms / 1000.0
    if float(jnp.max(p)) > 1:
        raise ValueError("rates_hz * dt_ms is above one spike per step; lower the rates or dt_ms.")
    k_mother, k_copy = jax.random.split(key)
    if correlation == 0:
        return (jax.random.uniform(k_copy, (steps, n_cells)) < p).astype(jnp.float32)
    # Mother process at rate max(rate) / correlation; cell i copies each mother spike with
    # probability rate_i / mother rate (Kuhn et al., Neural Comput. 2003): cells of equal
    # rate then share a fraction `correlation` of their spikes.
    p_mother = jnp.minimum(p.max() / correlation, 1.0)
    mother = jax.random.uniform(k_mother, (steps, 1)) < p_mother
    copy = jax.random.uniform(k_copy, (steps, n_cells)) < p / p_mother
    return (mother & copy).astype(jnp.float32)


class NwbFileError(ConfigError):
    """An NWB file cannot be read or has no spike times (a user error: exit 2 on the CLI;
    a ValueError like every ConfigError)."""


class NwbFileMissing(NwbFileError, FileNotFoundError):
    """An NWB file does not exist."""


def read_nwb_units(
    path: str | Path,
    *,
    dt_ms: float,
    duration_ms: float | None = None,
    units: list[int] | None = None,
) -> np.ndarray:
    """Bin the spike times (s) of an NWB file's units table on a grid of ``dt_ms``:
    ``(steps, n_units)`` of 0/1 (several spikes in one bin count once). ``duration_ms``
    defaults to the last spike; ``units`` selects rows of the table."""
    try:
        from pynwb import NWBHDF5IO
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "reading NWB files needs pynwb: pip install -e '.[nwb]'."
        ) from None
    path = Path(path)
    if not path.is_file():
        raise NwbFileMissing(f"NWB file {path} does not exist.")
    try:
        io = NWBHDF5IO(str(path), "r")
    except Exception as e:  # h5py and pynwb raise many kinds; all mean: not a readable file
        raise NwbFileError(_unreadable(path, e)) from None
    with io:
        try:
            nwb = io.read()
            table = nwb.units
            n = 0 if table is None else len(table)
        except Exception as e:
            raise NwbFileError(_unreadable(path, e)) from None
        if n == 0:
            raise NwbFileError(f"NWB file {path} has no units table (spike times) to read.")
        rows = range(n) if units is None else units
        bad = [i for i in rows if not 0 <= i < n]
        if bad:
            raise NwbFileError(
                f"NWB file {path} has {n} units (rows 0-{n - 1}); units {bad} do not exist."
            )
        try:
            trains = [np.asarray(table.get_unit_spike_times(i), np.float64) * 1000.0 for i in rows]
        except Exception as e:
            raise NwbFileError(_unreadable(path, e)) from None
    if not all(np.all(np.isfinite(t)) for t in trains):
        raise NwbFileError(f"NWB file {path} has non-finite spike times; the file is corrupt.")
    last = max((t.max() for t in trains if t.size), default=0.0)
    duration_ms = last + dt_ms if duration_ms is None else duration_ms
    steps = int(round(duration_ms / dt_ms))
    out = np.zeros((steps, len(trains)), np.float32)
    for j, t in enumerate(trains):
        idx = np.floor(t / dt_ms + 1e-6).astype(int)  # 1.2 ms / 0.1 ms is bin 12, not 11
        out[idx[(idx >= 0) & (idx < steps)], j] = 1.0
    return out


def _unreadable(path: Path, e: Exception) -> str:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return (
        f"NWB file {path} cannot be read as NWB ({type(e).__name__}: {first[:200]}); it is "
        "corrupt, truncated or not an NWB (HDF5) file: download or export it again."
    )


def exponential_filter(trains: Array, dt_ms: float, tau_ms: float) -> Array:
    """Causal exponential filter along time: ``f(t) = sum_{s <= t} x(s) exp(-(t-s)/tau)``."""
    decay = jnp.exp(-dt_ms / tau_ms).astype(trains.dtype)

    def step(f, x):
        f = f * decay + x
        return f, f

    _, out = jax.lax.scan(step, jnp.zeros(trains.shape[1:], trains.dtype), trains)
    return out


class AbstractSpikeLoss(AbstractLoss):
    """A loss between ``(steps, n)`` output and target spike trains sampled every ``dt_ms``
    (:func:`spike_train_objective` sets ``dt_ms`` to the simulation's step)."""

    tau_ms: eqx.AbstractVar[float]
    dt_ms: eqx.AbstractVar[float | None]

    def __call__(self, output: Array, target: Array) -> Array:
        if self.dt_ms is None:
            raise ValueError(
                f"{type(self).__name__}.dt_ms is None: give the trains' time step (ms), or build "
                "the objective with spike_train_objective(..., dt=...), which sets it."
            )
        return self.distance(output, target, self.dt_ms)

    @abc.abstractmethod
    def distance(self, output: Array, target: Array, dt_ms: float) -> Array:
        """The loss of ``(steps, n)`` trains sampled every ``dt_ms`` ms."""


class VanRossum(AbstractSpikeLoss):
    """van Rossum distance: ``sqrt(integral (f_out - f_target)^2 dt / tau)`` of the
    exponentially filtered trains, averaged over cells (1 per unmatched spike pair, far
    apart; 0 for identical trains). ``tau_ms``: the filter's time constant."""

    tau_ms: float = 10.0
    dt_ms: float | None = None

    def distance(self, output: Array, target: Array, dt_ms: float) -> Array:
        diff = exponential_filter(output - target, dt_ms, self.tau_ms)
        return jnp.mean(jnp.sqrt(jnp.sum(diff * diff, axis=0) * dt_ms / self.tau_ms + 1e-12))


class CrossCorrelation(AbstractSpikeLoss):
    """``1 - `` the normalised correlation of the filtered trains at lag ``lag_ms``,
    averaged over cells (0 for identical trains, 1 for uncorrelated ones; a silent cell
    counts as 1).

    The study's cross-correlation loss (000, "Cross-Correlation") is
    ``integral y(t) y*(t + lag) dt`` of the output ``y`` and the target ``y*``: with
    ``lag_ms > 0`` an output that the target repeats ``lag_ms`` later scores as a match.
    The correlation is taken over the overlap of the two windows (``steps - lag`` steps);
    ``lag_ms`` is rounded to whole steps and may be negative."""

    tau_ms: float = 10.0
    dt_ms: float | None = None
    lag_ms: float = eqx.field(static=True, default=0.0)

    def distance(self, output: Array, target: Array, dt_ms: float) -> Array:
        fo = exponential_filter(output, dt_ms, self.tau_ms)
        ft = exponential_filter(target, dt_ms, self.tau_ms)
        k = int(round(self.lag_ms / dt_ms))
        if abs(k) >= fo.shape[0]:
            raise ValueError(
                f"CrossCorrelation.lag_ms = {self.lag_ms} is {abs(k)} steps of {dt_ms} ms, not "
                f"shorter than the {fo.shape[0]}-step trains; use a lag below "
                f"{fo.shape[0] * dt_ms:g} ms."
            )
        if k > 0:
            fo, ft = fo[:-k], ft[k:]
        elif k < 0:
            fo, ft = fo[-k:], ft[:k]
        return 1.0 - jnp.mean(normalised_correlation(fo, ft))


def normalised_correlation(a: Array, b: Array) -> Array:
    """Per column, the Pearson correlation of ``(steps, n)`` signals ``a`` and ``b`` (0
    where either is constant)."""
    a, b = a - a.mean(0), b - b.mean(0)
    num = jnp.sum(a * b, axis=0)
    den = jnp.sqrt(jnp.sum(a * a, axis=0) * jnp.sum(b * b, axis=0))
    return jnp.where(den > 0, num / jnp.maximum(den, 1e-30), 0.0)


def correlation_vs_lag(
    output: Array, target: Array, *, dt_ms: float, tau_ms: float, lags_ms: Array
) -> np.ndarray:
    """``1 - CrossCorrelation(tau_ms, dt_ms, lag).distance`` for each lag in ``lags_ms``:
    the normalised cross-correlation of the filtered trains as a function of the lag
    (filtered once; the lags in NumPy, float64)."""
    fo = np.asarray(exponential_filter(output, dt_ms, tau_ms), np.float64)
    ft = np.asarray(exponential_filter(target, dt_ms, tau_ms), np.float64)
    out = []
    for lag in np.asarray(lags_ms, np.float64):
        k = int(round(lag / dt_ms))
        if abs(k) >= fo.shape[0]:
            raise ValueError(f"lag {lag} ms is not shorter than the {fo.shape[0]}-step trains.")
        a, b = (fo[:-k], ft[k:]) if k > 0 else (fo[-k:], ft[:k]) if k < 0 else (fo, ft)
        a, b = a - a.mean(0), b - b.mean(0)
        den = np.sqrt(np.sum(a * a, 0) * np.sum(b * b, 0))
        corr = np.where(den > 0, np.sum(a * b, 0) / np.maximum(den, 1e-300), 0.0)
        out.append(float(np.mean(corr)))
    return np.asarray(out)


def all_spike_losses(dt_ms: float = 0.1) -> list[AbstractSpikeLoss]:
    """One instance of every spike-train loss (drives the contract tests)."""
    return [VanRossum(10.0, dt_ms), VanRossum(2.0, dt_ms), CrossCorrelation(10.0, dt_ms)]


def spike_train_objective(
    net: Network,
    inputs: Array,
    target: Array,
    loss: AbstractSpikeLoss | None = None,
    *,
    dt: float = 0.1,
) -> NetworkObjective:
    """Reproduce ``target`` trains from ``inputs``: the network's last-layer spikes against
    the target under a spike-train loss, as a one-example
    :class:`~weakgrad.objectives.network.NetworkObjective` (parameters: one dict per layer).

    Args:
        net: the network (e.g. ``Network.feedforward((10, 30, 30, 10), HodgkinHuxley(), ...)``).
        inputs: ``(steps, n_in)`` input per step (spike trains times a current gain).
        target: ``(steps, n_out)`` target spike trains.
        loss: a spike-train loss (default ``VanRossum()``); its ``dt_ms`` is set to ``dt``.
        dt: time step (ms).
    """
    if np.ndim(inputs) != 2 or np.ndim(target) != 2 or np.shape(target)[0] != np.shape(inputs)[0]:
        raise ValueError(
            f"inputs (steps, n_in) and target (steps, n_out) must have the same number "
            f"of steps, got {np.shape(inputs)} and {np.shape(target)}."
        )
    loss = VanRossum() if loss is None else loss
    if not isinstance(loss, AbstractSpikeLoss):
        raise TypeError(f"loss must be a spike-train loss (VanRossum, ...), got {loss!r}.")
    if loss.dt_ms is not None and loss.dt_ms != dt:
        raise ValueError(f"loss.dt_ms = {loss.dt_ms} differs from dt = {dt}; make them agree.")
    loss = eqx.tree_at(lambda lo: lo.dt_ms, loss, dt, is_leaf=lambda v: v is None)
    return NetworkObjective(
        net, jnp.asarray(inputs)[None], jnp.asarray(target)[None], loss, dt=dt,
        steps=int(np.shape(inputs)[0]), read=SpikeTrains(),
    )  # fmt: skip
