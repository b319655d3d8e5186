"""Objectives built on a weakgrad :class:`~weakgrad.sim.network.Network`: a network, a batch of
inputs and targets, and a loss on the readout.

The parameters are the trainable arrays of each layer: a tuple with one dict per layer,
``{"weight", "bias"}`` (and ``"recurrent"`` where the layer has recurrent weights). Besides
plain and population evaluation, a network objective supports what only white-box access
gives: node perturbation (noise on pre-activations, with eligibility sums) and
surrogate-gradient BPTT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.base import AbstractObjective, _shard_population
from weakgrad.objectives.losses import AbstractLoss
from weakgrad.sim.network import Network, NodeNoise, Record, layer_noise_words, simulate
from weakgrad.sim.neurons._base import AbstractNeuron
from weakgrad.sim.random import stream_keys
from weakgrad.sim.surrogates import AbstractSurrogate

__all__ = [
    "AbstractReadout",
    "MeanOutput",
    "MeanVoltage",
    "NetworkObjective",
    "network_params",
    "network_with_params",
]


class AbstractReadout(eqx.Module):
    """What the loss sees of the last layer: ``(n_out,)`` from a simulation's trace."""

    record: eqx.AbstractClassVar[Record]

    def __call__(self, trace: Any) -> Array:
        raise NotImplementedError


class MeanOutput(AbstractReadout):
    """Time average of the last layer's output (spikes, rates or graded release)."""

    record: ClassVar[Record] = Record(counts=False)

    def __call__(self, trace: Any) -> Array:
        return trace.mean_output[-1]


class MeanVoltage(AbstractReadout):
    """Time average of the last layer's membrane potential (mV): a non-spiking readout.

    Spike counts of Hodgkin-Huxley neurons barely move with the drive once a neuron fires
    (type II: firing starts at ~50 Hz) and not at all below threshold, so a loss on them is
    flat almost everywhere. The mean potential rises with the drive on both sides of
    threshold, like the membrane-potential readouts of trained spiking networks.
    """

    record: ClassVar[Record] = Record(counts=False, mean_output=False, mean_voltage=True)

    def __call__(self, trace: Any) -> Array:
        return trace.mean_voltage[-1]


def network_params(net: Network) -> tuple[dict[str, Array], ...]:
    """The trainable arrays of ``net``: one dict per layer."""
    out = []
    for layer in net.layers:
        p = {"weight": layer.weight, "bias": layer.bias}
        if layer.recurrent is not None:
            p["recurrent"] = layer.recurrent
        out.append(p)
    return tuple(out)


def network_with_params(net: Network, params: Any) -> Network:
    """``net`` with the trainable arrays of :func:`network_params` replaced by ``params``."""
    layers = []
    for layer, p in zip(net.layers, params, strict=True):
        new = eqx.tree_at(lambda la: (la.weight, la.bias), layer, (p["weight"], p["bias"]))
        if "recurrent" in p:
            new = eqx.tree_at(lambda la: la.recurrent, new, p["recurrent"])
        layers.append(new)
    return Network(tuple(layers))


class NetworkObjective(AbstractObjective):
    """Loss of a network on a batch.

    Attributes:
        net: the network (its weights are the starting point; :meth:`params` returns them).
        inputs: ``(B, n_in)`` constant inputs or ``(B, steps, n_in)`` per step.
        targets: ``(B, ...)`` whatever ``loss`` expects (labels for classification).
        loss: per-example loss on the readout.
        dt: time step (ms); ignored by rate units.
        steps: number of steps (1 for an ordinary feed-forward network).
        read: what the loss sees (:class:`MeanOutput`, the default, or :class:`MeanVoltage`).
    """

    net: Network
    inputs: Array
    targets: Array
    loss: AbstractLoss
    dt: float = 0.01
    steps: int = eqx.field(static=True, default=1)
    read: AbstractReadout = MeanOutput()

    def __check_init__(self):
        b = np.shape(self.inputs)[0] if np.ndim(self.inputs) >= 2 else None
        if b is None or np.shape(self.targets)[:1] != (b,):
            raise ValueError(
                f"NetworkObjective needs inputs (B, n_in) or (B, steps, n_in) and targets (B, ...) "
                f"with the same B, got inputs {np.shape(self.inputs)} and targets "
                f"{np.shape(self.targets)}."
            )

    @property
    def batch_size(self) -> int:
        return int(np.shape(self.inputs)[0])

    def params(self) -> tuple[dict[str, Array], ...]:
        return network_params(self.net)

    def network(self, params: Any) -> Network:
        return network_with_params(self.net, params)

    def with_batch(self, inputs: Array, targets: Array) -> NetworkObjective:
        return dataclasses.replace(self, inputs=inputs, targets=targets)

    def with_surrogate(self, surrogate: AbstractSurrogate) -> NetworkObjective:
        """The same objective with ``surrogate`` on every neuron that takes one."""

        def swap(x):
            if isinstance(x, AbstractNeuron) and hasattr(x, "surrogate"):
                return eqx.tree_at(lambda n: n.surrogate, x, surrogate, is_leaf=lambda v: v is None)
            return x

        net = jax.tree.map(swap, self.net, is_leaf=lambda x: isinstance(x, AbstractNeuron))
        return dataclasses.replace(self, net=net)

    def _simulate(self, params: Any, x: Array, key: Array, noise=(), probes=(), streams=None):
        return simulate(
            self.network(params),
            x,
            dt=self.dt,
            steps=self.steps,
            key=key,
            record=self.read.record,
            check=False,
            noise=noise,
            probes=probes,
            streams=streams,
        )

    def readout(self, params: Any, key: Array) -> tuple[Array, Array]:
        """Readout ``(B, n_out)`` and validity ``(B,)`` of the whole batch."""
        keys = jax.random.split(key, self.batch_size)
        trace = jax.vmap(lambda x, k: self._simulate(params, x, k))(self.inputs, keys)
        return self.read(trace), trace.valid

    def noisy_readouts(
        self, params: Any, key: Array, sigma: Sequence[float], draws: int, hold: int | None = None
    ) -> tuple[Array, Array]:
        """Readouts ``(draws, B, n_out)`` and validity ``(draws, B)`` of the batch under node
        noise: on layer ``i`` a Gaussian current of std ``sigma[i]`` (units of its drive; 0:
        none) added to each neuron's drive, redrawn every ``hold`` steps (None: held for the
        whole run), independent per draw and example. That is the perturbation
        :class:`~weakgrad.estimators.NodePerturbation` trains with, whose estimate is the
        gradient of the loss averaged over it: a prediction averaged over the draws is the
        prediction of that smoothed network.
        """
        n_layers = len(self.net.layers)
        if len(sigma) != n_layers or any(not v >= 0 for v in sigma):
            raise ValueError(
                f"noisy_readouts: sigma = {list(sigma)} needs one value >= 0 per layer "
                f"({n_layers})."
            )
        if not (isinstance(draws, int) and draws >= 1):
            raise ValueError(f"noisy_readouts: draws must be an int >= 1, got {draws!r}.")
        hold = self.steps if hold is None else hold
        b, dtype = self.batch_size, jax.tree_util.tree_leaves(params)[0].dtype
        k_noise, k_sim = jax.random.split(key)
        noisy = [i for i, v in enumerate(sigma) if v > 0]
        # (draws, B, 1, 2, n) key words per noisy layer: one stream per draw and example.
        words = {
            i: layer_noise_words(k_noise, i, (draws, b, 1), self.net.layers[i].n_out) for i in noisy
        }
        keys = jax.random.split(k_sim, b)

        def one(words_d):
            def example(x, k, w):
                noise = tuple(
                    NodeNoise(
                        i, w[i], jnp.ones((1,), dtype), jnp.asarray(sigma[i], dtype), hold=hold
                    )
                    for i in noisy
                )
                trace = self._simulate(params, x, k, noise)
                return self.read(trace), trace.valid

            return jax.vmap(example)(self.inputs, keys, words_d)

        return jax.vmap(one, axis_size=draws)(words)

    def per_example(self, params: Any, key: Array, noise=None) -> Array:
        """Losses ``(B,)``; NaN where a simulation blew up. ``noise`` (optional): one
        tuple of :class:`NodeNoise` per example, stacked along a leading batch axis."""
        keys = jax.random.split(key, self.batch_size)

        def one(x, t, k, nz):
            trace = self._simulate(params, x, k, () if nz is None else nz)
            loss = self.loss(self.read(trace), t)
            return jnp.where(trace.valid, loss, jnp.nan)

        if noise is None:
            return jax.vmap(lambda x, t, k: one(x, t, k, None))(self.inputs, self.targets, keys)
        return jax.vmap(one)(self.inputs, self.targets, keys, noise)

    def eligibility(self, params: Any, key: Array, noise: Any) -> tuple[Array, Any]:
        """Per-example losses of the unperturbed batch and the eligibility sums of the
        correlating ``noise`` (stacked per example), summed over the batch."""
        keys = jax.random.split(key, self.batch_size)

        def one(x, t, k, nz):
            trace = self._simulate(params, x, k, nz)
            loss = jnp.where(trace.valid, self.loss(self.read(trace), t), jnp.nan)
            return loss, trace.eligibility

        losses, elig = jax.vmap(one)(self.inputs, self.targets, keys, noise)
        return losses, jax.tree.map(lambda e: e.sum(0), elig)

    def probe_eligibility(self, params: Any, key: Array, probes: Any) -> Any:
        """The probe sums of :class:`~weakgrad.sim.network.StepProbe` s (stacked per example),
        summed over the batch."""
        keys = jax.random.split(key, self.batch_size)

        def one(x, k, pr):
            return self._simulate(params, x, k, probes=pr).probe_eligibility

        elig = jax.vmap(one)(self.inputs, keys, probes)
        return jax.tree.map(lambda e: e.sum(0), elig)

    def tail(self, params: Any, key: Array, first: int) -> NetworkObjective:
        """Layers ``first..`` as an objective of their own, fed at every step with what
        layer ``first - 1`` sends in an unperturbed run of this batch with ``key``.

        Noise on layers ``first..`` leaves the layers below untouched (layers feed forward
        only), so an estimator that perturbs only those layers can simulate the layers
        below once per example instead of once per perturbed run. The tail's methods take
        ``params[first:]`` and the same ``key`` as this objective and give the same
        numbers (stochastic neurons draw the same noise); an example whose lower layers
        blew up keeps a NaN loss. Memory: the recorded input, ``B x steps x n`` values
        (``n``: the width of layer ``first - 1``).
        """
        n_layers = len(self.net.layers)
        if not 0 < first < n_layers:
            raise ValueError(
                f"tail(first={first}) needs 0 < first < {n_layers} (the network's layers)."
            )
        head = Network(self.network(params).layers[:first])
        record = Record(counts=False, mean_output=False, outputs=True)

        def one(x, k):
            trace = simulate(
                head, x, dt=self.dt, steps=self.steps, key=k, record=record, check=False
            )
            return trace.outputs[-1], trace.valid

        sent, valid = jax.vmap(one)(self.inputs, jax.random.split(key, self.batch_size))
        return _Tail(
            Network(self.net.layers[first:]),
            sent,
            self.targets,
            self.loss,
            self.dt,
            self.steps,
            self.read,
            offset=first,
            head_valid=valid,
        )

    def readout_gradient(self, params: Any, key: Array) -> tuple[Array, Array]:
        """Per-example losses ``(B,)`` and the gradient of the batch-mean loss with respect to
        each example's readout ``(B, n_out)`` (autodiff through the loss only, never
        through the network)."""
        readout, valid = self.readout(params, key)
        losses, grads = jax.vmap(jax.value_and_grad(self.loss))(readout, self.targets)
        losses = jnp.where(valid, losses, jnp.nan)
        return losses, grads / self.batch_size

    def __call__(self, params: Any, key: Array) -> Array:
        return self.per_example(params, key).mean()

    def population(self, params: Any, keys: Array) -> Array:
        (params, keys), n = _shard_population((params, keys))
        return jax.vmap(self.__call__)(params, keys)[:n]


class _Tail(NetworkObjective):
    """The upper layers of a network, fed with the recorded output of the layers below
    (:meth:`NetworkObjective.tail`). Layer ``j`` here is layer ``offset + j`` of the whole
    network: its neuron noise comes from the same stream."""

    offset: int = eqx.field(static=True, kw_only=True)
    head_valid: Array = eqx.field(kw_only=True)  # (B,) the layers below did not blow up

    def _simulate(self, params: Any, x: Array, key: Array, noise=(), probes=(), streams=None):
        streams = tuple(
            stream_keys(jax.random.fold_in(key, self.offset + j), (la.n_out,))
            if la.neuron.stochastic
            else None
            for j, la in enumerate(self.net.layers)
        )
        return super()._simulate(params, x, key, noise, probes, streams)

    def readout(self, params: Any, key: Array) -> tuple[Array, Array]:
        readout, valid = super().readout(params, key)
        return readout, valid & self.head_valid

    def per_example(self, params: Any, key: Array, noise=None) -> Array:
        return jnp.where(self.head_valid, super().per_example(params, key, noise), jnp.nan)

    def eligibility(self, params: Any, key: Array, noise: Any) -> tuple[Array, Any]:
        losses, elig = super().eligibility(params, key, noise)
        return jnp.where(self.head_valid, losses, jnp.nan), elig
