"""Spike-train replication (study 001, "First Steps"): feed the spike trains of a few cells
into a network of HH neurons and train it to reproduce them.

- :func:`synthetic_spike_trains`: Poisson trains of ``n`` cells with given rates and a
  pairwise correlation (a shared "mother" train whose spikes each cell copies with
  probability ``correlation``, plus independent spikes to keep the rate).
- :func:`read_nwb_units`: the units table (spike times) of a Neurodata Without Borders file,
  binned on the simulation grid, so Neural Latents Benchmark data can be dropped in.
- Losses on spike trains (``(steps, n)`` arrays of 0/1 per step of ``dt`` ms):
  :class:`VanRossum` (van Rossum, Neural Comput. 2001) and :class:`CrossCorrelation`.
- :class:`SpikeTrainObjective`: a network, input trains and target trains bound into an
  objective that any weight-space estimator can train (the study: regression sampling,
  S = 900, alternating layers, dt = 0.1 ms, a 10 x 30 x 30 x 10 network).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.base import AbstractObjective, _shard_population
from weakgrad.objectives.network import network_params, network_with_params
from weakgrad.sim.network import Network, Record, simulate

__all__ = [
    "synthetic_spike_trains",
    "read_nwb_units",
    "exponential_filter",
    "VanRossum",
    "CrossCorrelation",
    "SpikeTrainObjective",
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
        raise FileNotFoundError(f"NWB file {path} does not exist.")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        if nwb.units is None or len(nwb.units) == 0:
            raise ValueError(f"NWB file {path} has no units table (spike times) to read.")
        rows = range(len(nwb.units)) if units is None else units
        trains = [np.asarray(nwb.units.get_unit_spike_times(i), np.float64) * 1000.0 for i in rows]
    last = max((t.max() for t in trains if t.size), default=0.0)
    duration_ms = last + dt_ms if duration_ms is None else duration_ms
    steps = int(round(duration_ms / dt_ms))
    out = np.zeros((steps, len(trains)), np.float32)
    for j, t in enumerate(trains):
        idx = np.floor(t / dt_ms + 1e-6).astype(int)  # 1.2 ms / 0.1 ms is bin 12, not 11
        out[idx[(idx >= 0) & (idx < steps)], j] = 1.0
    return out


def exponential_filter(trains: Array, dt_ms: float, tau_ms: float) -> Array:
    """Causal exponential filter along time: ``f(t) = sum_{s <= t} x(s) exp(-(t-s)/tau)``."""
    decay = jnp.exp(-dt_ms / tau_ms).astype(trains.dtype)

    def step(f, x):
        f = f * decay + x
        return f, f

    _, out = jax.lax.scan(step, jnp.zeros(trains.shape[1:], trains.dtype), trains)
    return out


class AbstractSpikeLoss(eqx.Module):
    @abc.abstractmethod
    def __call__(self, output: Array, target: Array, dt_ms: float) -> Array:
        """Loss between ``(steps, n)`` output and target spike trains."""


class VanRossum(AbstractSpikeLoss):
    """van Rossum distance: ``sqrt(integral (f_out - f_target)^2 dt / tau)`` of the
    exponentially filtered trains, averaged over cells (1 per unmatched spike pair, far
    apart; 0 for identical trains). ``tau_ms``: the filter's time constant."""

    tau_ms: float = 10.0

    def __call__(self, output: Array, target: Array, dt_ms: float) -> Array:
        diff = exponential_filter(output - target, dt_ms, self.tau_ms)
        return jnp.mean(jnp.sqrt(jnp.sum(diff * diff, axis=0) * dt_ms / self.tau_ms + 1e-12))


class CrossCorrelation(AbstractSpikeLoss):
    """``1 - `` the normalised zero-lag correlation of the filtered trains, averaged over
    cells (0 for identical trains, 1 for uncorrelated ones; a silent cell counts as 1)."""

    tau_ms: float = 10.0

    def __call__(self, output: Array, target: Array, dt_ms: float) -> Array:
        fo = exponential_filter(output, dt_ms, self.tau_ms)
        ft = exponential_filter(target, dt_ms, self.tau_ms)
        fo, ft = fo - fo.mean(0), ft - ft.mean(0)
        num = jnp.sum(fo * ft, axis=0)
        den = jnp.sqrt(jnp.sum(fo * fo, axis=0) * jnp.sum(ft * ft, axis=0))
        return jnp.mean(1.0 - jnp.where(den > 0, num / jnp.maximum(den, 1e-30), 0.0))


class SpikeTrainObjective(AbstractObjective):
    """Reproduce ``target`` trains from ``inputs``: the network's last-layer spikes against
    the target under a spike-train loss. Parameters as for
    :class:`~weakgrad.objectives.network.NetworkObjective` (one dict per layer).

    Attributes:
        net: the network (e.g. ``Network.feedforward((10, 30, 30, 10), HodgkinHuxley(), ...)``).
        inputs: ``(steps, n_in)`` input per step (spike trains times a current gain).
        target: ``(steps, n_out)`` target spike trains.
        loss: a spike-train loss.
        dt: time step (ms).
    """

    net: Network
    inputs: Array
    target: Array
    loss: AbstractSpikeLoss = VanRossum()
    dt: float = 0.1

    def __check_init__(self):
        if np.ndim(self.inputs) != 2 or np.shape(self.target)[0] != np.shape(self.inputs)[0]:
            raise ValueError(
                f"inputs (steps, n_in) and target (steps, n_out) must have the same number "
                f"of steps, got {np.shape(self.inputs)} and {np.shape(self.target)}."
            )

    def params(self) -> Any:
        return network_params(self.net)

    def network(self, params: Any) -> Network:
        return network_with_params(self.net, params)

    def output(self, params: Any, key: Array) -> tuple[Array, Array]:
        trace = simulate(
            self.network(params), self.inputs, dt=self.dt, steps=np.shape(self.inputs)[0],
            key=key, record=Record(counts=False, mean_output=False, spikes=True), check=False,
        )  # fmt: skip
        return trace.spikes[-1].astype(self.inputs.dtype), trace.valid

    def __call__(self, params: Any, key: Array) -> Array:
        spikes, valid = self.output(params, key)
        return jnp.where(valid, self.loss(spikes, self.target, self.dt), jnp.nan)

    def population(self, params: Any, keys: Array) -> Array:
        (params, keys), n = _shard_population((params, keys))
        return jax.vmap(self.__call__)(params, keys)[:n]
