"""The perturbations node perturbation hands to the simulator
(:class:`~weakgrad.sim.network.AbstractPerturbation`): Gaussian noise on layers'
pre-activations with its eligibility sums (:class:`NodeNoise`), and per-step probes from the
unperturbed state (:class:`StepProbes`). Study 000, "Optimizing Methods to Make Them VIABLE".
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.sim.network import AbstractPerturbation, Network, StepContext
from weakgrad.sim.random import StepKey, normal, stream_keys

__all__ = ["LayerNoise", "NodeNoise", "LayerProbe", "StepProbes", "layer_noise_words"]

# Stream ids of the counter-based generator, apart from the neurons' own noise.
_NODE_NOISE_STREAM = 7
_PROBE_STREAM = 8


def layer_noise_words(key: Array, layer: int, lead: tuple[int, ...], n_out: int) -> Array:
    """Key words ``(*lead, 2, n_out)`` of independent noise streams for one layer (the
    ``words`` of :class:`LayerNoise` and :class:`LayerProbe`): one stream per index of
    ``lead`` (e.g. draw and example), derived from ``key`` and the layer's index."""
    return jnp.moveaxis(stream_keys(jax.random.fold_in(key, layer), (*lead, n_out)), 0, -2)


def _zero_sums(layer: Any, dtype: Any) -> dict[str, Array]:
    e = {
        "weight": jnp.zeros((layer.n_in, layer.n_out), dtype),
        "bias": jnp.zeros((layer.n_out,), dtype),
    }
    if layer.recurrent is not None:
        e["recurrent"] = jnp.zeros((layer.n_out, layer.n_out), dtype)
    return e


def _accumulate(e: dict[str, Array], x: Array, prev: Array | None, g: Array, constant: bool):
    """``e`` plus this step's ``x^T g`` (weight), ``g`` (bias) and ``prev^T g`` (recurrent).
    With a constant input the weight term is formed once at the end (:func:`_close`)."""
    e = dict(e)
    if not constant:
        e["weight"] = e["weight"] + jnp.outer(x, g)
    e["bias"] = e["bias"] + g
    if "recurrent" in e:
        e["recurrent"] = e["recurrent"] + jnp.outer(prev, g)
    return e


def _close(e: dict[str, Array], layer: int, inputs: Array) -> dict[str, Array]:
    # With a constant input x, sum_t x^T g(t) = x^T sum_t g(t): one outer product instead of
    # one per step (for MNIST, 784 x 100 per step otherwise).
    if layer == 0 and inputs.ndim == 1:
        return {**e, "weight": jnp.outer(inputs, e["bias"])}
    return e


class LayerNoise(eqx.Module):
    """Gaussian noise on one layer's pre-activations, drawn inside the simulation.

    The noise of stream ``k`` at step ``t`` is ``xi_k(t) ~ N(0, std^2)`` per neuron, from the
    counter-based generator, so a stream is reproduced exactly from its key words. The
    layer's noise is the combination ``eta(t) = sum_k weights_k xi_k(t)``.

    Attributes:
        layer: index of the layer (>= 0).
        words: uint32 ``(K, 2, n_out)``: the key words of ``K`` noise streams.
        weights: ``(K,)`` coefficients of the streams.
        std: standard deviation of each stream (units of the layer's drive).
        inject: add ``eta`` to the drive.
        correlate: accumulate the eligibility ``sum_t x(t)^T eta(t)`` (weight, ``x`` the
            layer's input at step ``t``), ``sum_t eta(t)`` (bias) and, for a recurrent
            layer, ``sum_t y(t-1)^T eta(t)``.
        hold: steps each draw is held for: ``xi(t)`` is drawn at ``t // hold`` (1: white
            noise, a fresh draw every step).
    """

    layer: int = eqx.field(static=True)
    words: Array
    weights: Array
    std: float | Array
    inject: bool = eqx.field(static=True, default=True)
    correlate: bool = eqx.field(static=True, default=False)
    hold: int = eqx.field(static=True, default=1)

    def eta(self, t: Array, dtype: Any) -> Array:
        words = jnp.moveaxis(self.words, 1, 0)  # StepKey wants (2, K, n_out)
        block = t if self.hold == 1 else t // self.hold
        xi = normal(StepKey(words, block, stream=_NODE_NOISE_STREAM), dtype)  # (K, n_out)
        return self.std * (self.weights.astype(dtype) @ xi)


class NodeNoise(AbstractPerturbation):
    """Noise on the pre-activations of one or more layers (:class:`LayerNoise`, at most one
    per layer). ``Trace.perturbation`` holds the eligibility sums of the correlating
    layers, in order (None if none correlates)."""

    layers: tuple[LayerNoise, ...]

    def check(self, net: Network, steps: int) -> None:
        seen = set()
        for nn in self.layers:
            if not isinstance(nn, LayerNoise):
                raise TypeError(f"NodeNoise.layers must hold LayerNoise, got {type(nn).__name__}.")
            if not 0 <= nn.layer < len(net.layers):
                raise ValueError(
                    f"LayerNoise.layer={nn.layer} is out of range for {len(net.layers)} layers."
                )
            if nn.layer in seen:
                raise ValueError(
                    f"two LayerNoise objects target layer {nn.layer}; combine their streams."
                )
            seen.add(nn.layer)
            n = net.layers[nn.layer].n_out
            k = np.shape(nn.weights)
            if len(k) != 1 or np.shape(nn.words) != (k[0], 2, n):
                raise ValueError(
                    f"LayerNoise for layer {nn.layer} needs words of shape (K, 2, {n}) and "
                    f"weights of shape (K,), got {np.shape(nn.words)} and {k}."
                )

    def init(self, net: Network, steps: int, dtype: Any) -> Any:
        sums = tuple(
            _zero_sums(net.layers[nn.layer], dtype) if nn.correlate else None for nn in self.layers
        )
        # Noise held for the whole run is one draw: make it once, not at every step
        # (drawing costs about as much as a neuron's step).
        held = tuple(
            nn.eta(jnp.uint32(0), dtype) if nn.hold >= steps else None for nn in self.layers
        )
        return sums, held

    def drive(self, layer, t, x, prev, drive, state, *, constant_input):
        sums, held = state
        for j, nn in enumerate(self.layers):
            if nn.layer != layer:
                continue
            eta = held[j] if held[j] is not None else nn.eta(t, drive.dtype)
            if nn.inject:
                drive = drive + eta
            if nn.correlate:
                sums = (
                    *sums[:j],
                    _accumulate(sums[j], x, prev, eta, constant_input),
                    *sums[j + 1 :],
                )
        return drive, (sums, held)

    def finish(self, inputs: Array, state: Any) -> Any:
        sums, _ = state
        out = tuple(
            _close(e, nn.layer, inputs)
            for nn, e in zip(self.layers, sums, strict=True)
            if e is not None
        )
        return out or None


class LayerProbe(eqx.Module):
    """Per-step probes of one layer's pre-activations (see :class:`StepProbes`).

    Attributes:
        layer: index of the probed layer (>= 0).
        words: uint32 ``(K, 2, n_out)`` key words of the ``K`` probe streams.
        std: probe size (units of the layer's drive).
        readout: ``(n_last,)`` weights on the last layer's outputs.
    """

    layer: int = eqx.field(static=True)
    words: Array
    std: float | Array
    readout: Array


class StepProbes(AbstractPerturbation):
    """Per-step perturbation probes of layers' pre-activations, each started from the
    unperturbed state (the study's first node-perturbation variant: "return all the neurons
    to the same state every timestep for sampling").

    At every step ``t`` the simulation also advances, from the same pre-step state and with
    the same neuron noise, ``K`` copies of layers ``layer .. last`` whose pre-activation at
    ``layer`` is shifted by ``std * xi_k(t)``, ``xi_k ~ N(0, 1)``. With ``delta_k(t) =
    readout . (y_k(t) - y(t))`` (``y``: last layer's output), the estimate of the derivative
    of ``sum_t readout . y(t)`` with respect to the pre-activation at step ``t`` is
    ``g(t) = sum_k delta_k(t) xi_k(t) / (K std)``; ``Trace.perturbation`` holds, per probe,
    ``sum_t x(t)^T g(t)`` (weight), ``sum_t g(t)`` (bias) and, for a recurrent layer,
    ``sum_t y_layer(t-1)^T g(t)``. Only the effect within the same step is seen: the probes
    never change the state the run continues from.
    """

    probes: tuple[LayerProbe, ...]

    def check(self, net: Network, steps: int) -> None:
        for pr in self.probes:
            if not isinstance(pr, LayerProbe) or not 0 <= pr.layer < len(net.layers):
                raise ValueError(
                    f"probes must be LayerProbe objects on existing layers, got {pr!r}."
                )
            n = net.layers[pr.layer].n_out
            if np.ndim(pr.words) != 3 or np.shape(pr.words)[1:] != (2, n):
                raise ValueError(
                    f"LayerProbe.words must have shape (K, 2, {n}), got {np.shape(pr.words)}."
                )
            if np.shape(pr.readout) != (net.layers[-1].n_out,):
                raise ValueError(
                    f"LayerProbe.readout must have shape ({net.layers[-1].n_out},), "
                    f"got {np.shape(pr.readout)}."
                )

    def init(self, net: Network, steps: int, dtype: Any) -> Any:
        return tuple(_zero_sums(net.layers[pr.layer], dtype) for pr in self.probes)

    def drive(self, layer, t, x, prev, drive, state, *, constant_input):
        return drive, state

    def after_step(self, net: Network, dt: Any, ctx: StepContext, state: Any) -> Any:
        layers = net.layers
        dtype = ctx.output[-1].dtype
        out = []
        for pr, e in zip(self.probes, state, strict=True):
            first = pr.layer
            xi = normal(StepKey(jnp.moveaxis(pr.words, 1, 0), ctx.t, stream=_PROBE_STREAM), dtype)

            def probe_output(eta, first=first):
                # Layers first..last again from their pre-step states, same neuron noise.
                x_p = None
                for i in range(first, len(layers)):
                    la = layers[i]
                    if i == first:
                        drive = ctx.drive[i] + eta
                    else:
                        drive = x_p @ la.weight + la.bias
                        if la.recurrent is not None:
                            drive = drive + ctx.prev[i] @ la.recurrent
                    _, current = la.synapse.step(ctx.synapse_state[i], drive, dt)
                    _, o = la.neuron.step(ctx.neuron_state[i], current, dt, key=ctx.step_key[i])
                    x_p = o.value
                return x_p

            y_k = jax.vmap(probe_output)(pr.std * xi)  # (K, n_last)
            delta = (y_k - ctx.output[-1]) @ pr.readout.astype(dtype)  # (K,)
            g = (delta @ xi) / (xi.shape[0] * pr.std)
            constant = first == 0 and ctx.constant_input
            out.append(_accumulate(e, ctx.layer_in[first], ctx.prev[first], g, constant))
        return tuple(out)

    def finish(self, inputs: Array, state: Any) -> Any:
        return tuple(_close(e, pr.layer, inputs) for pr, e in zip(self.probes, state, strict=True))
