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

    def with_value(self, fn: Callable[[Array], Array], x: Array, key: Array) -> tuple[Array, Array]:
        """The Jacobian and ``fn(x)`` (methods that get the value on the way override it)."""
        return self(fn, x, key), fn(x)


class Autodiff(AbstractJacobianMethod):
    """By automatic differentiation (:func:`jacobian`); ``key`` is unused."""

    def __call__(self, fn: Callable[[Array], Array], x: Array, key: Array) -> Array:
        return jacobian(fn, x)

    def with_value(self, fn: Callable[[Array], Array], x: Array, key: Array) -> tuple[Array, Array]:
        x = jnp.asarray(x)
        n_out = int(np.prod(jax.eval_shape(fn, x).shape))
        mode = jax.jacfwd if x.size <= n_out else jax.jacrev

        def flat(v):
            y = fn(v.reshape(x.shape))
            return jnp.ravel(y), y

        return mode(flat, has_aux=True)(jnp.ravel(x))


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


@eqx.filter_jit
def _batched(
    fn: Callable[[Array], Array],
    method: AbstractJacobianMethod,
    xs: Array,
    keys: Array,
    right: Array | None,
) -> tuple[Array, Array]:
    """Singular values ``(B, k)`` and values ``fn(x)`` ``(B, ...)`` at each example. Module
    level and filtered, so a callable that is a pytree (an equinox module holding its
    arrays, as :func:`network_spectra` builds) compiles once per structure, not per call.
    ``right`` ``(m, n)``: the Jacobian is multiplied by it on the right, per block of its
    last ``m`` columns (the chain rule through a linear map ``x -> x right^T`` of each
    step's input)."""

    def one(x, k):
        jac, value = method.with_value(fn, x, k)
        if right is not None:
            jac = (jac.reshape(jac.shape[0], -1, right.shape[0]) @ right).reshape(jac.shape[0], -1)
        return jac, value

    jacs, values = jax.vmap(one)(xs, keys)
    return jnp.linalg.svd(jacs, compute_uv=False), values


def _values_and_outputs(
    fn: Callable[[Array], Array],
    xs: Array,
    method: AbstractJacobianMethod | None,
    key: Array | None,
    right: Array | None = None,
) -> tuple[np.ndarray, Array]:
    method = Autodiff() if method is None else method
    xs = jnp.asarray(xs)
    keys = jax.random.split(jax.random.key(0) if key is None else key, xs.shape[0])
    s, values = _batched(fn, method, xs, keys, right)
    return np.asarray(s), values


def singular_values(
    fn: Callable[[Array], Array],
    xs: Array,
    *,
    method: AbstractJacobianMethod | None = None,
    key: Array | None = None,
) -> np.ndarray:
    """Singular values ``(B, min(n_out, n_in))``, descending, of ``fn``'s Jacobian at each
    example of ``xs`` (leading axis B), batched with ``jax.vmap`` under one compiled
    function (reused for the same ``fn``, or for pytree callables of the same structure);
    ``method``: how (default :class:`Autodiff`); ``key``: for a :class:`Perturbation`'s
    directions."""
    return _values_and_outputs(fn, xs, method, key)[0]


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
    to its output; layer ``l``'s input at an example is ``layers[l-1](...layers[0](x))``
    (each layer runs once per example: its output comes with its Jacobian)."""
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
        "input-output": _values_and_outputs(composed if fn is None else fn, xs, method, keys[0])[0]
    }
    h = jnp.asarray(xs)
    for i, f in enumerate(layers):
        values[f"layer {i + 1}"], h = _values_and_outputs(f, h, method, keys[i + 1])
    name = "autodiff" if method is None else type(method).__name__.lower()
    return JacobianSpectra(values, float(threshold), name)


class _Readout(eqx.Module):
    """An objective's readout of one example as a function of its input (a pytree, so
    :func:`_batched` compiles once per objective structure)."""

    objective: Any
    params: Any
    key: Array

    def __call__(self, x: Array) -> Array:
        return self.objective.read(self.objective.simulate_example(self.params, x, self.key))


class _LayerOutput(eqx.Module):
    """One layer's time-averaged output for a constant input (a pytree, like
    :class:`_Readout`)."""

    layer: Any
    dt: Any
    steps: int = eqx.field(static=True)
    key: Array

    def __call__(self, h: Array) -> Array:
        from weakgrad.objectives.network import MeanOutput
        from weakgrad.sim.network import Network, simulate

        trace = simulate(
            Network((self.layer,)), h, dt=self.dt, steps=self.steps, key=self.key,
            record=MeanOutput.record, check=False,
        )  # fmt: skip
        return trace.mean_output[-1]


def _through_drive(p: dict[str, Array]) -> dict[str, Array]:
    """A layer's parameters with identity weights and no bias: fed its own drive, it
    computes what it computed from its input."""
    n = p["weight"].shape[1]
    dtype = p["weight"].dtype
    return {**p, "weight": jnp.eye(n, dtype=dtype), "bias": jnp.zeros((n,), dtype)}


def network_spectra(
    objective: Any,
    params: Any = None,
    *,
    key: Array,
    method: AbstractJacobianMethod | None = None,
    threshold: float = 1e-3,
    examples: int | None = None,
    wrt: str = "input",
    layers: bool = True,
) -> JacobianSpectra:
    """Spectra of a :class:`~weakgrad.objectives.network.AbstractNetworkObjective` at its
    batch's inputs (the first ``examples``; all by default): the input-output Jacobian of
    its readout with respect to an example's input (flattened when it is ``(steps, n_in)``),
    and (``layers``) each layer's Jacobian of its time-averaged output with respect to a
    constant input, at the time average of what the layer below sends. For one-step rate
    networks the layers compose to the whole network exactly; for spiking or multi-step ones
    the layer spectra are those of the layers' rate maps. ``key`` seeds the simulations (the
    same for every perturbed run, so stochastic neurons see frozen noise) and the
    perturbations.

    ``wrt="drive"``: differentiate (or perturb) each layer's drive ``alpha = x W + b``
    (``n_out`` numbers) instead of its input (``n_in``) and multiply by ``W^T``: the same
    Jacobian by the chain rule, since the drive is linear in the input, for ``n_out``
    perturbation directions instead of ``n_in`` (784 -> 100 for MNIST). A
    :class:`Perturbation`'s ``sigma`` is then in the drive's units (uA/cm^2 for
    Hodgkin-Huxley layers, nA for LIF).
    """
    if wrt not in ("input", "drive"):
        raise ValueError(f"network_spectra: wrt must be 'input' or 'drive', got {wrt!r}.")
    if not 0 < threshold < 1:
        raise ValueError(f"network_spectra needs 0 < threshold < 1, got {threshold}.")
    params = objective.params() if params is None else params
    net = objective.network(params)
    xs = jnp.asarray(objective.inputs)[: examples or None]
    sim_key, pert_key = jax.random.split(key)
    keys = jax.random.split(pert_key, len(net.layers) + 1)
    drive = wrt == "drive"

    def linear(h, layer):  # the drive, and the factor W^T that takes it back to the input
        return h @ layer.weight + layer.bias, layer.weight.T

    if drive:
        first = (_through_drive(params[0]), *params[1:])
        u, right = linear(xs, net.layers[0])
        s, _ = _values_and_outputs(_Readout(objective, first, sim_key), u, method, keys[0], right)
    else:
        s, _ = _values_and_outputs(_Readout(objective, params, sim_key), xs, method, keys[0])
    values = {"input-output": s}
    if layers:
        # the first layer's constant input: the time average of a per-step input
        h = xs.mean(1) if xs.ndim == 3 else xs
        for i, (layer, p) in enumerate(zip(net.layers, params, strict=True)):
            if drive:
                p = _through_drive(p)
                new = (p["weight"], p["bias"])
                layer = eqx.tree_at(lambda la: (la.weight, la.bias), layer, new)
                f = _LayerOutput(layer, objective.dt, objective.steps, sim_key)
                u, right = linear(h, net.layers[i])
                s, h = _values_and_outputs(f, u, method, keys[i + 1], right)
            else:
                f = _LayerOutput(layer, objective.dt, objective.steps, sim_key)
                s, h = _values_and_outputs(f, h, method, keys[i + 1])
            values[f"layer {i + 1}"] = s
    name = "autodiff" if method is None else type(method).__name__.lower()
    return JacobianSpectra(values, float(threshold), name)
