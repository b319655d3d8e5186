"""Loss landscapes: sweeps of an objective along one parameter or two directions, with trial
averaging; and :func:`landscape_study`, what ``weakgrad landscape`` runs: the sweep of a
turn-off task, its mollified curve and summaries, as a result that saves itself."""

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

from weakgrad.analysis._checks import at_most, finite, require
from weakgrad.analysis._checks import seed as check_seed
from weakgrad.analysis.mollify import BumpKernel, Mollified, mollify_curve
from weakgrad.io import write_csv
from weakgrad.parallel import pad_to_devices, shard_leading, to_host
from weakgrad.sim.network import SimulationError
from weakgrad.sim.neurons import HodgkinHuxley

__all__ = [
    "Landscape1D",
    "Landscape2D",
    "sweep_1d",
    "sweep_2d",
    "along",
    "random_direction",
    "Bands",
    "detect_bands",
    "firing_stop",
    "LandscapeSettings",
    "LandscapeStudy",
    "landscape_study",
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
        losses.append(to_host(loss)[:n])
        spikes.append(to_host(count)[:n])
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


def firing_stop(w: np.ndarray, spikes: np.ndarray) -> float | None:
    """Where repetitive firing stops on a single-neuron curve: the first ``w`` past the
    spike-count peak whose count is below half the peak's; None if the count never drops
    that far in the range (the onset spikes alone stay far below half a repetitive train)."""
    spikes = np.asarray(spikes)
    peak = int(np.argmax(spikes))
    after = np.flatnonzero(spikes[peak:] < 0.5 * spikes[peak])
    return float(np.asarray(w)[peak + after[0]]) if after.size else None


LANDSCAPE_TASKS = ("single-neuron", "complete-graph")
DIRECTIONS = ("weight", "uniform", "random")
# Complete-graph direction -> (what the title says is swept, x-axis label).
_SWEPT = {
    "weight": ("W[0,0]", "recurrent weight W[0,0] (uA/cm^2 per unit release)"),
    "uniform": (
        "all recurrent weights",
        "recurrent weight w, all connections (uA/cm^2 per unit release)",
    ),
    "random": ("random direction", "step along the random direction"),
}


_require = require
# Largest sweeps accepted (a larger one would not fit in memory or would run for days).
MAX_POINTS = 1_000_000  # grid points (per axis in 1-D; in all in 2-D)
MAX_TRIALS = 100_000
MAX_NEURONS = 1_000
MAX_STEPS = 100_000_000  # time steps per trial, --tau-ms / --dt-ms


@dataclass(frozen=True)
class LandscapeSettings:
    """What ``weakgrad landscape`` sweeps; ``None`` ranges and point counts are resolved to the
    task's defaults on construction, so the object holds what is run (``landscape.json``).

    Attributes:
        task: "single-neuron" (input weight of one HH neuron, current ``w * i0``) or
            "complete-graph" (recurrent weights of ``neurons`` HH neurons).
        neurons: complete graph: number of neurons.
        direction: complete graph: "weight" (W[0,0] alone), "uniform" (all recurrent weights
            together) or "random" (a filter-normalised Gaussian direction around ``center``).
        two_d: complete graph: two random directions on a ``points x points`` grid.
        w_min, w_max: the range; weights in uA/cm^2 per unit release (graph) or unitless
            (single neuron), steps in units of the base weights' scale along random
            directions. Default 0 to 3 (single neuron), -50 to 300 (graph), -1 to 1 (random
            direction or 2-D).
        zoom: ``(lo, hi)``: a shortcut that replaces ``w_min`` and ``w_max``.
        points: points in the range (per axis in 2-D); default 301 (51 in 2-D).
        trials: noisy trials per point; noise: noise current std, uA/cm^2 per step.
        tau_ms, dt_ms: simulated duration per trial and time step, ms.
        i0: single neuron: input current per unit weight, uA/cm^2.
        bias: complete graph: bias current into every neuron, uA/cm^2.
        center: complete graph: base weight of random-direction sweeps.
        mollify: 1-D only: half-width (w units) of the bump the curve is also mollified with.
        seed: PRNG seed. x64: simulate in float64.

    Bad values raise :class:`~weakgrad.errors.ConfigError` naming the command-line option
    (``--dt-ms`` for ``dt_ms``) and the fix.
    """

    task: str = "single-neuron"
    neurons: int = 1
    direction: str = "uniform"
    two_d: bool = False
    w_min: float | None = None
    w_max: float | None = None
    zoom: tuple[float, float] | None = None
    points: int | None = None
    trials: int = 1
    noise: float = 0.0
    tau_ms: float = 1000.0
    dt_ms: float = 0.01
    i0: float = 34.6
    bias: float = 10.0
    center: float = 0.0
    mollify: float | None = None
    seed: int = 0
    x64: bool = False

    def __post_init__(self):
        # Finite numbers first, each naming its own option (--dt-ms inf blames --dt-ms).
        for flag, value in [
            ("--dt-ms", self.dt_ms), ("--tau-ms", self.tau_ms), ("--noise", self.noise),
            ("--i0", self.i0), ("--bias", self.bias), ("--center", self.center),
            ("--w-min", self.w_min), ("--w-max", self.w_max), ("--mollify", self.mollify),
        ] + [("--zoom", z) for z in self.zoom or ()]:  # fmt: skip
            if value is not None:
                finite(flag, value)
        check_seed(self.seed)
        _require(
            self.task in LANDSCAPE_TASKS,
            f"--task must be one of {', '.join(LANDSCAPE_TASKS)}, got {self.task!r}.",
        )
        _require(
            self.direction in DIRECTIONS,
            f"--direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}.",
        )
        _require(
            self.graph or not (self.two_d or self.neurons != 1),
            "--2d and --neurons need --task complete-graph (the single neuron has one weight).",
        )
        _require(self.neurons >= 1, f"--neurons must be >= 1, got {self.neurons}.")
        at_most("--neurons", self.neurons, MAX_NEURONS, "the weights would not fit in memory")
        _require(
            not self.two_d or self.neurons**2 >= 2,
            "--2d needs at least 2 weights: use --neurons 2 or more.",
        )
        # Single neuron: the input weight; graph: the recurrent weight; random directions
        # and 2-D: steps in units of the filter-normalised direction (1 = the weights' scale).
        lo, hi = (
            (0.0, 3.0)
            if not self.graph
            else (-1.0, 1.0)
            if self.two_d or self.direction == "random"
            else (-50.0, 300.0)
        )
        w_min, w_max = self.zoom if self.zoom is not None else (self.w_min, self.w_max)
        resolved = {
            "zoom": None if self.zoom is None else tuple(float(z) for z in self.zoom),
            "w_min": lo if w_min is None else float(w_min),
            "w_max": hi if w_max is None else float(w_max),
            "points": (51 if self.two_d else 301) if self.points is None else self.points,
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)  # frozen: resolved once, here
        _require(self.points >= 2, f"--points must be >= 2, got {self.points}.")
        _require(self.trials >= 1, f"--trials must be >= 1, got {self.trials}.")
        at_most("--trials", self.trials, MAX_TRIALS, "average fewer trials per point")
        at_most(
            "--points" + (" squared (--2d)" if self.two_d else ""),
            self.evaluations,
            MAX_POINTS,
            "sweep fewer points, or zoom in with --zoom",
        )
        _require(
            self.w_max > self.w_min,
            f"--w-max ({self.w_max}) must be greater than --w-min ({self.w_min}).",
        )
        _require(
            self.noise >= 0, f"--noise must be >= 0 uA/cm^2, got {self.noise}; use 0 for no noise."
        )
        _require(self.dt_ms > 0, f"--dt-ms must be > 0, got {self.dt_ms}; try 0.01.")
        _require(
            self.tau_ms > 0 and self.tau_ms >= self.dt_ms,
            f"--tau-ms must be positive and >= --dt-ms, got {self.tau_ms}; try 1000.",
        )
        steps = self.tau_ms / self.dt_ms
        _require(
            steps <= MAX_STEPS,
            f"--tau-ms / --dt-ms = {steps:.3g} time steps per trial, above the limit of "
            f"{MAX_STEPS:,}; shorten --tau-ms or lengthen --dt-ms.",
        )
        limit = HodgkinHuxley().max_dt
        _require(
            self.dt_ms <= limit,
            f"--dt-ms {self.dt_ms} is above the {limit} ms limit of the Hodgkin-Huxley "
            "integration (it loses spikes there); use --dt-ms 0.01 (or <= 0.1).",
        )
        _require(
            self.mollify is None or self.mollify > 0,
            f"--mollify must be a positive half-width, got {self.mollify}.",
        )
        _require(
            self.mollify is None or not self.two_d,
            "--mollify smooths 1-D curves; leave it out with --2d.",
        )
        spacing = (self.w_max - self.w_min) / (self.points - 1)
        _require(
            self.mollify is None or self.mollify >= spacing,
            f"--mollify {self.mollify} is below the grid spacing {spacing:.4g}: it would not "
            "smooth anything; use a wider bump or more --points.",
        )
        half_range = (self.w_max - self.w_min) / 2
        _require(
            self.mollify is None or self.mollify <= half_range,
            f"--mollify {self.mollify} is wider than half the range [{self.w_min:g}, "
            f"{self.w_max:g}] ({half_range:.4g}): no point of the curve would be free of "
            f"border effects; use --mollify <= {half_range:.4g} or a wider range.",
        )

    @property
    def graph(self) -> bool:
        return self.task == "complete-graph"

    @property
    def evaluations(self) -> int:
        """Grid points simulated (each with ``trials`` trials)."""
        return self.points**2 if self.two_d else self.points

    def as_dict(self) -> dict[str, Any]:
        """The settings as ``landscape.json`` records them (fields that apply to the task)."""
        meta: dict[str, Any] = {
            "task": self.task, "w_min": self.w_min, "w_max": self.w_max, "points": self.points,
            "trials": self.trials, "noise": self.noise, "tau_ms": self.tau_ms,
            "dt_ms": self.dt_ms, "seed": self.seed, "dtype": "float64" if self.x64 else "float32",
            "zoom": list(self.zoom) if self.zoom else None,
        }  # fmt: skip
        if self.graph:
            meta.update(
                neurons=self.neurons, direction=self.direction, bias=self.bias,
                center=self.center, two_d=self.two_d,
            )  # fmt: skip
        else:
            meta["i0"] = self.i0
        if self.mollify is not None:
            meta["mollify"] = self.mollify
        return meta


@dataclass(frozen=True)
class LandscapeStudy:
    """Result of :func:`landscape_study`.

    Attributes:
        settings: what was swept.
        curve: the 1-D landscape, or the 2-D one with ``settings.two_d``.
        mollified: the 1-D curve mollified by the bump of half-width ``settings.mollify``.
        bands: complete graph, 1-D: coexisting loss branches per window (:func:`detect_bands`).
    """

    settings: LandscapeSettings
    curve: Landscape1D | Landscape2D
    mollified: Mollified | None = None
    bands: Bands | None = None

    def as_dict(self) -> dict[str, Any]:
        """``landscape.json``: the settings, and the most bands seen (complete graph, 1-D)."""
        meta = self.settings.as_dict()
        if self.bands is not None:
            meta["max_bands"] = self.bands.max_count
        return meta

    def summary(self) -> str:
        """Where repetitive firing stops (single neuron), where the curve is many-valued
        (complete graph), or the loss range (2-D)."""
        s, c = self.settings, self.curve
        if isinstance(c, Landscape2D):
            return (
                f"{s.points} x {s.points} points; loss {c.loss_mean.min():.4g} to "
                f"{c.loss_mean.max():.4g}"
            )
        if self.bands is not None:
            many = self.bands.w[self.bands.count > 1]
            where = (
                f"up to {self.bands.max_count} loss bands (multi-valued) between "
                f"w={many.min():.4g} and {many.max():.4g}"
                if many.size
                else "one loss band everywhere"
            )
        else:
            stop = firing_stop(c.w, c.spikes_mean)
            where = (
                f"repetitive firing stops near w={stop:.3g}"
                if stop is not None
                else "repetitive firing does not stop in this range"
            )
        trials = f"{s.trials} trial{'s' if s.trials != 1 else ''}"
        return f"{s.points} points x {trials}; {where}"

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write the files of ``weakgrad landscape`` into ``out``: 1-D ``landscape.csv``,
        ``landscape.png``, ``landscape_mollified.csv`` (with ``mollify``), ``bands.csv``
        (complete graph); 2-D ``landscape2d.npz``, ``landscape2d.csv``, ``landscape2d.png``;
        always ``landscape.json``, and ``manifest.json`` last. The files move into place as a
        set (:func:`weakgrad.io.staged_outputs`): after a failure ``out`` holds the previous
        outputs unchanged. Returns the data file and the figure, in that order."""
        from weakgrad.io import staged_outputs, write_json
        from weakgrad.plots import plot_landscape, plot_landscape_2d, save_figure

        out, s, c = Path(out), self.settings, self.curve
        with staged_outputs(out, command="landscape") as d:
            if isinstance(c, Landscape2D):
                c.to_npz(d / "landscape2d.npz")
                files = [c.to_csv(d / "landscape2d.csv")]
                title = (
                    f"complete graph of {s.neurons} HH neurons: two filter-normalised directions"
                )
                files.append(save_figure(plot_landscape_2d(c, title=title), d / "landscape2d.png"))
            else:
                files = [c.to_csv(d / "landscape.csv")]
                m = self.mollified
                if m is not None:
                    rows = zip(c.w, c.loss_mean, m.y, m.valid, strict=True)
                    write_csv(
                        d / "landscape_mollified.csv",
                        ["w", "loss_mean", "loss_mollified", "valid"],
                        ([float(a), float(b), float(y), bool(v)] for a, b, y, v in rows),
                    )
                title = xlabel = None
                if s.graph:
                    title = (
                        f"complete graph of {s.neurons} HH neuron"
                        f"{'s' if s.neurons > 1 else ''}: {_SWEPT[s.direction][0]}"
                    )
                    xlabel = _SWEPT[s.direction][1]
                smooth = None if m is None else m.y
                fig = plot_landscape(c, title=title, xlabel=xlabel, smooth=smooth)
                files.append(save_figure(fig, d / "landscape.png"))
                if self.bands is not None:
                    b = self.bands
                    write_csv(
                        d / "bands.csv",
                        ["w", "bands"],
                        zip(b.w.tolist(), b.count.tolist(), strict=True),
                    )
            write_json(d / "landscape.json", self.as_dict())
        return [out / f.name for f in files]


def _single_neuron_sweep(s: LandscapeSettings, chunk: int, progress) -> Landscape1D:
    from weakgrad.tasks import SingleNeuronTurnOff

    task = SingleNeuronTurnOff(
        HodgkinHuxley(noise_std=s.noise), i0=s.i0, tau_ms=s.tau_ms, dt_ms=s.dt_ms
    )
    return sweep_1d(
        task.evaluate_trials, np.linspace(s.w_min, s.w_max, s.points), trials=s.trials,
        key=jax.random.key(s.seed), current=lambda x: x * s.i0, chunk=chunk, progress=progress,
    )  # fmt: skip


def _complete_graph_sweep(s: LandscapeSettings, chunk: int, progress) -> Landscape1D | Landscape2D:
    from weakgrad.tasks import CompleteGraphTurnOff

    n = s.neurons
    task = CompleteGraphTurnOff(
        n, HodgkinHuxley(noise_std=s.noise), bias=s.bias, tau_ms=s.tau_ms, dt_ms=s.dt_ms
    )
    k_sim, k_dir = jax.random.split(jax.random.key(s.seed))
    grid = np.linspace(s.w_min, s.w_max, s.points)
    if s.two_d:
        base = task.uniform(s.center)
        k1, k2 = jax.random.split(k_dir)
        d1, d2 = random_direction(k1, base), random_direction(k2, base)
        return sweep_2d(
            task.evaluate_trials, base, d1, d2, grid, grid, trials=s.trials, key=k_sim,
            chunk=chunk, progress=progress,
        )  # fmt: skip
    if s.direction == "uniform":
        base, d = task.uniform(0.0), task.uniform(1.0)
    elif s.direction == "weight":
        base, d = task.uniform(0.0), jnp.zeros((n, n)).at[0, 0].set(1.0)
    else:
        base = task.uniform(s.center)
        d = random_direction(k_dir, base)
    return sweep_1d(
        along(task.evaluate_trials, base, d), grid, trials=s.trials, key=k_sim, chunk=chunk,
        progress=progress,
    )  # fmt: skip


def landscape_study(
    settings: LandscapeSettings, *, progress: Callable[[int], None] | None = None
) -> LandscapeStudy:
    """Sweep as ``settings`` say (the chunks sharded over all JAX devices, in float64 with
    ``settings.x64``), then mollify the 1-D curve (``settings.mollify``) and count its loss
    bands (complete graph). ``progress`` is called with the number of points done."""
    s = settings
    chunk = max(jax.device_count(), 128)
    with jax.enable_x64(s.x64):
        sweep = _complete_graph_sweep if s.graph else _single_neuron_sweep
        curve = sweep(s, chunk, progress)
    if isinstance(curve, Landscape2D):
        return LandscapeStudy(s, curve)
    smooth = None
    if s.mollify is not None:
        smooth = mollify_curve(curve.w, curve.loss_mean, BumpKernel(s.mollify))
    bands = None
    if s.graph:
        bands = detect_bands(curve.w, curve.loss_mean, window=max(2, min(50, s.points // 10)))
    return LandscapeStudy(s, curve, smooth, bands)
