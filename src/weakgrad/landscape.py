"""Loss landscapes: sweeps of an objective along one parameter, with trial averaging."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.io import write_csv
from weakgrad.network import SimulationError
from weakgrad.parallel import pad_to_devices, shard_leading

__all__ = ["Landscape1D", "sweep_1d"]


@dataclass(frozen=True)
class Landscape1D:
    """A 1-D loss landscape: per point the mean and standard error over trials.

    ``loss_sem`` is NaN with a single trial (no spread to estimate).
    """

    w: np.ndarray
    current: np.ndarray
    loss_mean: np.ndarray
    loss_sem: np.ndarray
    spikes_mean: np.ndarray
    trials: int

    def columns(self) -> tuple[np.ndarray, ...]:
        return (self.w, self.current, self.loss_mean, self.loss_sem, self.spikes_mean)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write atomically (a temporary file renamed into place)."""
        header = ["w", "current", "loss_mean", "loss_sem", "spikes_mean"]
        rows = ([float(v) for v in row] for row in zip(*self.columns(), strict=True))
        return write_csv(path, header, rows)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, trials: int = 1) -> Landscape1D:
        data = np.genfromtxt(path, delimiter=",", names=True)
        return cls(
            data["w"],
            data["current"],
            data["loss_mean"],
            data["loss_sem"],
            data["spikes_mean"],
            trials,
        )


def sweep_1d(
    evaluate_trials: Callable[[Array, Array], tuple[Array, Array]],
    w: Array | np.ndarray,
    *,
    trials: int,
    key: Array,
    current: Callable[[np.ndarray], np.ndarray] | None = None,
    chunk: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Landscape1D:
    """Evaluate ``evaluate_trials(w_chunk, keys) -> (loss, spikes)`` of shape (W, trials)
    over ``w`` in jitted chunks, the chunk axis sharded over all JAX devices.

    Every point uses the same ``trials`` keys (common random numbers), so differences
    between neighbouring points are not masked by independent noise. A non-finite loss
    (a blown-up simulation) raises :class:`~weakgrad.network.SimulationError` naming the
    first bad ``w``; nothing is returned for a partly broken sweep.
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}.")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}.")
    w = np.asarray(w)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array of points, got shape {w.shape}.")
    keys = jax.random.split(key, trials)
    fn = jax.jit(evaluate_trials)
    losses, spikes = [], []
    for start in range(0, w.size, chunk):
        part = w[start : start + chunk]
        # every chunk padded to one shape: one compilation per sweep
        padded, n = pad_to_devices(jnp.asarray(part, jnp.result_type(float)), min(chunk, w.size))
        loss, count = fn(shard_leading(padded), keys)
        losses.append(np.asarray(loss)[:n])
        spikes.append(np.asarray(count)[:n])
        if progress is not None:
            progress(len(part))
    loss = np.concatenate(losses).astype(np.float64)
    bad = ~np.isfinite(loss).all(axis=1)
    if bad.any():
        raise SimulationError(
            f"at w={w[np.argmax(bad)]:.6g} ({bad.sum()} of {w.size} points): the simulation "
            "blew up (non-finite or out-of-range state); reduce dt or the input current."
        )
    count = np.concatenate(spikes).astype(np.float64)
    sem = loss.std(axis=1, ddof=1) / np.sqrt(trials) if trials > 1 else np.full(w.size, np.nan)
    cur = current(w) if current is not None else w
    return Landscape1D(w, np.asarray(cur), loss.mean(axis=1), sem, count.mean(axis=1), trials)
