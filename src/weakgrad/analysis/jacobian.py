"""Jacobian spectra and degeneracy measures (seed 004; issue 18).

The singular values of a network's input-output Jacobian ``d readout / d input`` and of
each layer's Jacobian ``d output_l / d input_l`` at each input example, by autodiff
(:class:`Autodiff`, ``jax.jacfwd``/``jax.jacrev``, whichever is cheaper for the shape) or,
where autodiff fails (spikes, thresholds), by regression on random input perturbations
(:class:`Perturbation`, :func:`jacobian_by_perturbation`).

Degeneracy measures of a spectrum ``s_1 >= s_2 >= ... >= s_k`` (per example; the result
gives their mean and standard error over examples):

- ``fraction_below``: the fraction of singular values below ``threshold * s_1``;
- ``effective_rank``: ``exp(H(p))`` with ``p_i = s_i / sum_j s_j`` and ``H`` the Shannon
  entropy (Roy & Vetterli 2007, "The effective rank: a measure of effective
  dimensionality", EUSIPCO): ``k`` for a flat spectrum, 1 for rank one;
- ``spread``: ``log10(s_1 / s_min)`` over the non-zero singular values (those above
  ``s_1 * k * eps`` of the dtype, numpy's ``matrix_rank`` tolerance): 0 for an orthogonal
  matrix.

:func:`spectra` takes plain functions; :func:`network_spectra` builds them from a weakgrad
network objective. Both return :class:`JacobianSpectra`, which saves itself.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = [
    "AbstractJacobianMethod",
    "Autodiff",
    "Perturbation",
    "jacobian",
    "jacobian_by_perturbation",
    "singular_values",
    "fraction_below",
    "effective_rank",
    "spread",
    "degeneracy",
    "JacobianSpectra",
    "spectra",
    "network_spectra",
]


def jacobian(fn: Callable[[Array], Array], x: Array) -> Array:
    """``d fn / d x`` at one example as an ``(n_out, n_in)`` matrix (both flattened):
    forward mode when the input is the smaller side, reverse mode otherwise."""
    x = jnp.asarray(x)
    n_in = x.size
    n_out = int(np.prod(jax.eval_shape(fn, x).shape))
    mode = jax.jacfwd if n_in <= n_out else jax.jacrev
    return mode(lambda v: jnp.ravel(fn(v.reshape(x.shape))))(jnp.ravel(x))


def jacobian_by_perturbation(
    fn: Callable[[Array], Array], x: Array, sigma: float, samples: int, key: Array
) -> Array:
    """A weak-gradient estimate of ``d fn / d x`` at one example, ``(n_out, n_in)``: least
    squares of the antithetic differences ``fn(x + sigma e) - fn(x - sigma e) ~ 2 sigma J e``
    over ``samples`` Gaussian directions ``e``. Exact for a linear ``fn`` once
    ``samples >= n_in``; for a smooth one the bias is ``O(sigma^2)`` and the noise falls as
    ``1 / sqrt(samples)``. Needs only evaluations of ``fn`` (spiking networks, simulators).
    ``sigma`` is in the input's units."""
    x = jnp.asarray(x)
    flat = jnp.ravel(x)
    e = jax.random.normal(key, (int(samples), flat.size), flat.dtype)

    def f(v):
        return jnp.ravel(fn(v.reshape(x.shape)))

    s = jnp.asarray(sigma, flat.dtype)
    dy = jax.vmap(lambda d: f(flat + s * d) - f(flat - s * d))(e)  # (S, n_out)
    jt, *_ = jnp.linalg.lstsq(e, dy / (2 * s))  # (n_in, n_out)
    return jt.T


class AbstractJacobianMethod(eqx.Module):
    """How to get one example's Jacobian ``(n_out, n_in)``."""

    @abc.abstractmethod
    def __call__(self, fn: Callable[[Array], Array], x: Array, key: Array) -> Array: ...


class Autodiff(AbstractJacobianMethod):
    """By automatic differentiation (:func:`jacobian`); ``key`` is unused."""

    def __call__(self, fn: Callable[[Array], Array], x: Array, key: Array) -> Array:
        return jacobian(fn, x)


class Perturbation(AbstractJacobianMethod):
    """By regression on ``samples`` random input perturbations of size ``sigma``
    (:func:`jacobian_by_perturbation`)."""

    sigma: float = 1e-2
    samples: int = eqx.field(static=True, default=256)

    def __check_init__(self):
        if not self.sigma > 0 or int(self.samples) < 1:
            raise ValueError(
                f"Perturbation needs sigma > 0 and samples >= 1, got {self.sigma}, {self.samples}."
            )

    def __call__(self, fn: Callable[[Array], Array], x: Array, key: Array) -> Array:
        return jacobian_by_perturbation(fn, x, self.sigma, self.samples, key)


def singular_values(
    fn: Callable[[Array], Array],
    xs: Array,
    *,
    method: AbstractJacobianMethod | None = None,
    key: Array | None = None,
) -> np.ndarray:
    """Singular values ``(B, min(n_out, n_in))``, descending, of ``fn``'s Jacobian at each
    example of ``xs`` (leading axis B), batched with ``jax.vmap``; ``method``: how (default
    :class:`Autodiff`); ``key``: for a :class:`Perturbation`'s directions."""
    method = Autodiff() if method is None else method
    xs = jnp.asarray(xs)
    keys = jax.random.split(jax.random.key(0) if key is None else key, xs.shape[0])
    jacs = jax.jit(jax.vmap(lambda x, k: method(fn, x, k)))(xs, keys)
    return np.asarray(jnp.linalg.svd(jacs, compute_uv=False))


def _tol(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s)
    return s[..., :1] * s.shape[-1] * np.finfo(s.dtype).eps


def fraction_below(s: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    """Per spectrum (last axis): the fraction of singular values ``<= threshold * max``
    (1 for a zero Jacobian, as autodiff gives through spikes)."""
    s = np.asarray(s)
    return np.mean(s <= threshold * s.max(-1, keepdims=True), axis=-1)


def effective_rank(s: np.ndarray) -> np.ndarray:
    """Per spectrum: ``exp`` of the entropy of ``s / sum(s)`` (Roy & Vetterli 2007); 0 for a
    zero Jacobian."""
    s = np.asarray(s, np.float64)
    total = s.sum(-1, keepdims=True)
    p = s / np.where(total > 0, total, 1.0)
    logp = np.log(np.where(p > 0, p, 1.0))
    return np.where(total[..., 0] > 0, np.exp(-np.sum(p * logp, axis=-1)), 0.0)


def spread(s: np.ndarray) -> np.ndarray:
    """Per spectrum: ``log10(max / min)`` over the singular values above the numerical-rank
    tolerance ``max * k * eps``; nan for a zero Jacobian (no non-zero values)."""
    s = np.asarray(s)
    nz = s > _tol(s)  # the tolerance of the spectrum's own dtype
    s = s.astype(np.float64)
    any_nz = nz.any(-1)
    smin = np.min(np.where(nz, s, np.inf), axis=-1)
    ratio = np.where(any_nz, s.max(-1), 1.0) / np.where(any_nz, smin, 1.0)
    return np.where(any_nz, np.log10(ratio), np.nan)


def _mean_sem(v: np.ndarray) -> tuple[float, float]:
    v = np.asarray(v, np.float64)
    v = v[~np.isnan(v)]  # the spread of a zero Jacobian is undefined: left out
    if v.size == 0:
        return float("nan"), float("nan")
    sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), sem


def degeneracy(s: np.ndarray, threshold: float = 1e-3) -> dict[str, float]:
    """The three measures of spectra ``s`` ``(B, k)``, mean and standard error over the B
    examples: ``{"fraction_below", "fraction_below_sem", "effective_rank", ...}``;
    ``effective_rank_fraction`` is the effective rank over ``k``; ``spread`` averages the
    examples with a non-zero Jacobian (nan if none has one)."""
    s = np.asarray(s)
    out: dict[str, float] = {}
    for name, v in (
        ("fraction_below", fraction_below(s, threshold)),
        ("effective_rank", effective_rank(s)),
        ("effective_rank_fraction", effective_rank(s) / s.shape[-1]),
        ("spread", spread(s)),
    ):
        out[name], out[f"{name}_sem"] = _mean_sem(v)
    return out


@dataclasses.dataclass(frozen=True)
class JacobianSpectra:
    """Singular values per Jacobian: ``values[name]`` ``(B, k)`` for ``"input-output"`` and
    ``"layer 1"``, ``"layer 2"``, ... (layers numbered from the input); ``threshold`` is
    the relative threshold of ``fraction_below``; ``method`` how the Jacobians were got."""

    values: dict[str, np.ndarray]
    threshold: float = 1e-3
    method: str = "autodiff"

    def measures(self) -> dict[str, dict[str, float]]:
        return {name: degeneracy(s, self.threshold) for name, s in self.values.items()}

    def summary(self) -> str:
        return "; ".join(
            f"{name}: {m['fraction_below']:.3g} of singular values below {self.threshold:g} x "
            f"max, effective rank {m['effective_rank']:.3g}, spread {m['spread']:.3g} decades"
            for name, m in self.measures().items()
        )

    def save(self, out: str | os.PathLike, *, stem: str = "jacobian") -> Path:
        """Write ``{stem}_spectra.csv`` (jacobian, example, index, singular value),
        ``{stem}_measures.csv``, ``{stem}.json`` and ``{stem}.png``; returns the JSON's path."""
        from weakgrad.io import write_csv, write_json
        from weakgrad.plots import save_figure

        out = Path(out)
        rows = [
            [name, b, i, float(v)]
            for name, s in self.values.items()
            for b in range(s.shape[0])
            for i, v in enumerate(s[b])
        ]
        write_csv(out / f"{stem}_spectra.csv", ["jacobian", "example", "index", "value"], rows)
        measures = self.measures()
        keys = list(next(iter(measures.values())))
        write_csv(
            out / f"{stem}_measures.csv",
            ["jacobian", *keys],
            [[name, *(m[k] for k in keys)] for name, m in measures.items()],
        )
        save_figure(plot_spectra(self), out / f"{stem}.png")
        return write_json(
            out / f"{stem}.json",
            {"threshold": self.threshold, "method": self.method, "measures": measures},
        )


def plot_spectra(result: JacobianSpectra, *, title: str = ""):
    """Mean sorted singular values (log scale) against their rank: input-output in black,
    the layers in a sequential colormap (layer index is a swept number)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    layers = [n for n in result.values if n != "input-output"]
    cmap = plt.get_cmap("viridis")
    for i, name in enumerate(layers):
        s = result.values[name]
        c = cmap(i / max(1, len(layers) - 1))
        ax.plot(np.arange(1, s.shape[1] + 1), s.mean(0), color=c, label=name)
    if "input-output" in result.values:
        s = result.values["input-output"]
        ax.plot(np.arange(1, s.shape[1] + 1), s.mean(0), "k", lw=2, label="input-output")
    ax.set_yscale("log")
    ax.set_xlabel("singular value rank")
    ax.set_ylabel("singular value (mean over inputs)")
    ax.set_title(title or f"Jacobian spectra ({result.method})")
    ax.legend(fontsize=7)
    return fig


def spectra(
    fn: Callable[[Array], Array] | None,
    xs: Array,
    *,
    layers: Sequence[Callable[[Array], Array]] = (),
    method: AbstractJacobianMethod | None = None,
    key: Array | None = None,
    threshold: float = 1e-3,
) -> JacobianSpectra:
    """Spectra of ``fn``'s Jacobian (None: the composition of ``layers``) and of each
    layer's, at each example of ``xs`` ``(B, n_in)``. ``layers[l]`` maps layer ``l``'s input
    to its output; layer ``l``'s input at an example is ``layers[l-1](...layers[0](x))``."""
    if fn is None and not layers:
        raise ValueError("spectra needs fn or layers.")
    if not 0 < threshold < 1:
        raise ValueError(f"spectra needs 0 < threshold < 1, got {threshold}.")
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, len(layers) + 1)

    def composed(x):
        for f in layers:
            x = f(x)
        return x

    values = {
        "input-output": singular_values(
            composed if fn is None else fn, xs, method=method, key=keys[0]
        )
    }
    h = jnp.asarray(xs)
    for i, f in enumerate(layers):
        values[f"layer {i + 1}"] = singular_values(f, h, method=method, key=keys[i + 1])
        h = jax.vmap(f)(h)
    name = "autodiff" if method is None else type(method).__name__.lower()
    return JacobianSpectra(values, float(threshold), name)


def network_spectra(
    objective: Any,
    params: Any = None,
    *,
    key: Array,
    method: AbstractJacobianMethod | None = None,
    threshold: float = 1e-3,
    examples: int | None = None,
) -> JacobianSpectra:
    """Spectra of a :class:`~weakgrad.objectives.network.AbstractNetworkObjective` at its
    batch's inputs (the first ``examples``; all by default): the input-output Jacobian of
    its readout with respect to an example's input (flattened when it is ``(steps, n_in)``),
    and each layer's Jacobian of its time-averaged output with respect to a constant input,
    at the time average of what the layer below sends. For one-step rate networks the layers
    compose to the whole network exactly; for spiking or multi-step ones the layer spectra
    are those of the layers' rate maps. ``key`` seeds the simulations (the same for every
    perturbed run, so stochastic neurons see frozen noise) and the perturbations.
    """
    from weakgrad.objectives.network import MeanOutput
    from weakgrad.sim.network import Network, simulate

    params = objective.params() if params is None else params
    net = objective.network(params)
    xs = jnp.asarray(objective.inputs)[: examples or None]
    sim_key, pert_key = jax.random.split(key)

    def readout(x):
        return objective.read(objective.simulate_example(params, x, sim_key))

    def layer_fn(layer):
        one = Network((layer,))
        record = MeanOutput.record

        def f(h):
            trace = simulate(
                one, h, dt=objective.dt, steps=objective.steps, key=sim_key,
                record=record, check=False,
            )  # fmt: skip
            return trace.mean_output[-1]

        return f

    layers = [layer_fn(la) for la in net.layers]
    # the first layer's constant input: the time average of a per-step input
    h0 = xs.mean(1) if xs.ndim == 3 else xs
    keys = jax.random.split(pert_key, len(layers) + 1)
    values = {"input-output": singular_values(readout, xs, method=method, key=keys[0])}
    h = h0
    for i, f in enumerate(layers):
        values[f"layer {i + 1}"] = singular_values(f, h, method=method, key=keys[i + 1])
        h = jax.vmap(f)(h)
    name = "autodiff" if method is None else type(method).__name__.lower()
    return JacobianSpectra(values, float(threshold), name)
