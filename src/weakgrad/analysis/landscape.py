"""Loss landscapes: sweeps of an objective along one parameter, with trial averaging."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.io import write_csv
from weakgrad.parallel import pad_to_devices, shard_leading
from weakgrad.sim.network import SimulationError

__all__ = [
    "Landscape1D",
    "Landscape2D",
    "sweep_1d",
    "sweep_2d",
    "along",
    "random_direction",
    "Bands",
    "detect_bands",
]


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


def _evaluate_points(
    evaluate_trials: Callable[[Array, Array], tuple[Array, Array]],
    points: np.ndarray,
    *,
    trials: int,
    key: Array,
    chunk: int,
    progress: Callable[[int], None] | None,
    label: Callable[[int], str],
) -> tuple[np.ndarray, np.ndarray]:
    """``(loss, spikes)`` of shape (P, trials) at ``points`` (leading axis P), in jitted
    chunks of one shape, the chunk axis sharded over all JAX devices."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}.")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}.")
    keys = jax.random.split(key, trials)
    fn = jax.jit(evaluate_trials)
    losses, spikes = [], []
    n_points = points.shape[0]
    for start in range(0, n_points, chunk):
        part = points[start : start + chunk]
        # every chunk padded to one shape: one compilation per sweep
        padded, n = pad_to_devices(jnp.asarray(part, jnp.result_type(float)), min(chunk, n_points))
        loss, count = fn(shard_leading(padded), keys)
        losses.append(np.asarray(loss)[:n])
        spikes.append(np.asarray(count)[:n])
        if progress is not None:
            progress(len(part))
    loss = np.concatenate(losses).astype(np.float64)
    bad = ~np.isfinite(loss).all(axis=1)
    if bad.any():
        raise SimulationError(
            f"at {label(int(np.argmax(bad)))} ({bad.sum()} of {n_points} points): the "
            "simulation blew up (non-finite or out-of-range state); reduce dt or the input "
            "current."
        )
    return loss, np.concatenate(spikes).astype(np.float64)


def _sem(loss: np.ndarray, trials: int) -> np.ndarray:
    if trials > 1:
        return loss.std(axis=-1, ddof=1) / np.sqrt(trials)
    return np.full(loss.shape[:-1], np.nan)


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
    (a blown-up simulation) raises :class:`~weakgrad.sim.network.SimulationError` naming the
    first bad ``w``; nothing is returned for a partly broken sweep. ``current`` maps ``w``
    to the input current recorded beside it (NaN when not given).
    """
    w = np.asarray(w)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array of points, got shape {w.shape}.")
    loss, count = _evaluate_points(
        evaluate_trials, w, trials=trials, key=key, chunk=chunk, progress=progress,
        label=lambda i: f"w={w[i]:.6g}",
    )  # fmt: skip
    cur = current(w) if current is not None else np.full(w.shape, np.nan)
    return Landscape1D(
        w, np.asarray(cur), loss.mean(axis=1), _sem(loss, trials), count.mean(axis=1), trials
    )


def along(evaluate_trials: Callable, base: Any, direction: Any) -> Callable:
    """``evaluate_trials`` of the parameters ``base + alpha * direction`` as a function of
    ``alpha`` (for :func:`sweep_1d`): a sweep along one parameter (a one-hot direction), a
    uniform shift (all ones) or a random direction."""

    def fn(alphas: Array, keys: Array):
        params = jax.vmap(lambda a: jax.tree.map(lambda b, d: b + a * d, base, direction))(alphas)
        return evaluate_trials(params, keys)

    return fn


def random_direction(key: Array, params: Any, *, filter_normalize: bool = True) -> Any:
    """A Gaussian random direction with the structure of ``params``.

    With ``filter_normalize`` (Li et al., "Visualizing the loss landscape of neural nets",
    2018) every column of a weight matrix (the weights into one neuron) is rescaled to the
    norm of the same column of ``params``, and vectors to the norm of the vector, so that
    the sweep's scale matches the weights'. Columns whose weights are all zero keep unit
    norm. Directions are Gaussian and sweeps go both ways (negative and positive).
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, p in zip(keys, leaves, strict=True):
        p = jnp.asarray(p)
        d = jax.random.normal(k, p.shape, jnp.result_type(p, float))
        if filter_normalize:
            axis = 0 if p.ndim >= 2 else None
            pn = jnp.linalg.norm(p, axis=axis, keepdims=axis is not None)
            dn = jnp.linalg.norm(d, axis=axis, keepdims=axis is not None)
            d = d * jnp.where(pn > 0, pn, 1.0) / dn
        out.append(d)
    return jax.tree_util.tree_unflatten(treedef, out)


@dataclass(frozen=True)
class Landscape2D:
    """A 2-D loss landscape ``L(base + a d1 + b d2)`` on a grid ``a x b``."""

    alpha: np.ndarray
    beta: np.ndarray
    loss_mean: np.ndarray  # (A, B)
    loss_sem: np.ndarray
    spikes_mean: np.ndarray
    trials: int

    def to_npz(self, path: str | os.PathLike) -> Path:
        from weakgrad.io import write_npz

        fields = {k: getattr(self, k) for k in ("alpha", "beta", "loss_mean", "loss_sem")}
        path = write_npz(path, spikes_mean=self.spikes_mean, trials=self.trials, **fields)
        return path

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> Landscape2D:
        d = np.load(path)
        return cls(
            d["alpha"], d["beta"], d["loss_mean"], d["loss_sem"], d["spikes_mean"], int(d["trials"])
        )

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Long format: one row per grid point."""
        rows = (
            [
                float(a),
                float(b),
                float(self.loss_mean[i, j]),
                float(self.loss_sem[i, j]),
                float(self.spikes_mean[i, j]),
            ]
            for i, a in enumerate(self.alpha)
            for j, b in enumerate(self.beta)
        )
        return write_csv(path, ["alpha", "beta", "loss_mean", "loss_sem", "spikes_mean"], rows)


def sweep_2d(
    evaluate_trials: Callable[[Any, Array], tuple[Array, Array]],
    base: Any,
    d1: Any,
    d2: Any,
    alpha: np.ndarray,
    beta: np.ndarray,
    *,
    trials: int,
    key: Array,
    chunk: int = 256,
    progress: Callable[[int], None] | None = None,
) -> Landscape2D:
    """``L(base + a d1 + b d2)`` for all ``a`` in ``alpha`` and ``b`` in ``beta``: the grid is
    flattened and evaluated in batched, sharded chunks (no Python loop over points);
    ``evaluate_trials(params_batch, keys)`` as for :func:`along`. The same trial keys at
    every point."""
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    if alpha.ndim != 1 or beta.ndim != 1 or alpha.size < 2 or beta.size < 2:
        raise ValueError("alpha and beta must be 1-D grids of at least 2 points.")
    grid = np.stack(np.meshgrid(alpha, beta, indexing="ij"), -1).reshape(-1, 2)

    def fn(ab: Array, keys: Array):
        def point(x):
            return jax.tree.map(lambda b, u, v: b + x[0] * u + x[1] * v, base, d1, d2)

        return evaluate_trials(jax.vmap(point)(ab), keys)

    loss, count = _evaluate_points(
        fn, grid, trials=trials, key=key, chunk=chunk, progress=progress,
        label=lambda i: f"(alpha, beta)=({grid[i, 0]:.4g}, {grid[i, 1]:.4g})",
    )  # fmt: skip
    shape = (alpha.size, beta.size)
    return Landscape2D(
        alpha, beta, loss.mean(1).reshape(shape), _sem(loss, trials).reshape(shape),
        count.mean(1).reshape(shape), trials,
    )  # fmt: skip


@dataclass(frozen=True)
class Bands:
    """How many distinct loss branches a sampled curve has, window by window.

    Attributes:
        w: centre of each window.
        count: number of bands in the window (1 = an ordinary curve).
        min_gap: the loss gap that separates two bands.
    """

    w: np.ndarray
    count: np.ndarray
    min_gap: float

    @property
    def max_count(self) -> int:
        return int(self.count.max())


def detect_bands(
    w: np.ndarray,
    loss: np.ndarray,
    *,
    window: int = 50,
    min_gap: float | None = None,
    min_points: int = 3,
) -> Bands:
    """Count the branches of a "multi-function" (study 000, "Training Complete Graph").

    In each window of ``window`` consecutive points the loss values are sorted; a jump
    larger than ``min_gap`` between neighbours separates clusters, and clusters with fewer
    than ``min_points`` points are dropped (stray points). The window's band count is the
    largest number of clusters whose ``w``-ranges overlap at one ``w``: branches that
    coexist, as opposed to one curve with a jump. The default ``min_gap`` is 5% of the
    curve's loss range. On an ordinary curve, jumps included, every window has one band.
    """
    w, loss = np.asarray(w, float), np.asarray(loss, float)
    if w.shape != loss.shape or w.ndim != 1 or w.size < window or window < 2:
        raise ValueError(f"need 1-D w and loss of equal length >= window={window}.")
    if min_gap is None:
        min_gap = 0.05 * float(np.ptp(loss)) or 1e-12
    centres, counts = [], []
    for start in range(0, w.size - window + 1, window):
        ws, ls = w[start : start + window], loss[start : start + window]
        order = np.argsort(ls)
        cuts = np.flatnonzero(np.diff(ls[order]) > min_gap)
        groups = np.split(order, cuts + 1)
        spans = [(ws[g].min(), ws[g].max()) for g in groups if g.size >= min_points]
        # Branches coexist where their w-ranges overlap; a jump of one curve gives
        # clusters side by side, never overlapping, and counts as one band.
        count = max((sum(lo <= x <= hi for lo, hi in spans) for x in ws), default=1)
        counts.append(max(1, int(count)))
        centres.append(float(ws.mean()))
    return Bands(np.asarray(centres), np.asarray(counts), float(min_gap))
