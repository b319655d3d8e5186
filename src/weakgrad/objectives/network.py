"""Objectives built on a weakgrad :class:`~weakgrad.sim.network.Network`: a network, a batch of
inputs and targets, a readout and a loss on it.

The parameters are the trainable arrays of each layer: a tuple with one dict per layer,
``{"weight", "bias"}`` (and ``"recurrent"`` where the layer has recurrent weights).
:class:`AbstractNetworkObjective` declares what white-box estimators need beyond plain and
population evaluation: runs with a perturbation of the simulation
(:class:`~weakgrad.sim.network.AbstractPerturbation`, node perturbation), the loss's
gradient with respect to the readout, a copy with surrogate spike derivatives (surrogate
gradients), and the upper layers as an objective of their own (:meth:`tail`).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.base import AbstractObjective
from weakgrad.objectives.losses import AbstractLoss
from weakgrad.parallel import shard_population
from weakgrad.sim.network import AbstractPerturbation, Network, Record, Trace, simulate
from weakgrad.sim.neurons._base import AbstractNeuron
from weakgrad.sim.random import stream_keys
from weakgrad.sim.surrogates import AbstractSurrogate

__all__ = [
    "AbstractReadout",
    "MeanOutput",
    "MeanVoltage",
    "SpikeTrains",
    "AbstractNetworkObjective",
    "NetworkObjective",
    "TailObjective",
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


class SpikeTrains(AbstractReadout):
    """The last layer's spikes per step, ``(steps, n_out)`` of 0/1 in the simulation's float
    type: the readout of spike-train losses (:mod:`weakgrad.tasks.spike_trains`)."""

    record: ClassVar[Record] = Record(counts=False, mean_output=False, spikes=True)

    def __call__(self, trace: Any) -> Array:
        return trace.spikes[-1]


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


def _with_surrogate(net: Network, surrogate: AbstractSurrogate) -> Network:
    return jax.tree.map(
        lambda x: x.with_surrogate(surrogate) if isinstance(x, AbstractNeuron) else x,
        net,
        is_leaf=lambda x: isinstance(x, AbstractNeuron),
    )


class AbstractNetworkObjective(AbstractObjective):
    """A loss of a network on a batch, with the white-box access that node perturbation and
    surrogate gradients need. Implementations give :meth:`simulate_example` (one example,
    optionally perturbed) and the fields below; the batched methods are shared.

    Per-example results are ``jnp.nan`` where a simulation blew up.
    """

    net: eqx.AbstractVar[Network]
    inputs: eqx.AbstractVar[Array]
    targets: eqx.AbstractVar[Array]
    loss: eqx.AbstractVar[AbstractLoss]
    dt: eqx.AbstractVar[float]
    steps: eqx.AbstractVar[int]
    read: eqx.AbstractVar[AbstractReadout]

    @abc.abstractmethod
    def simulate_example(
        self, params: Any, x: Array, key: Array, perturb: AbstractPerturbation | None = None
    ) -> Trace:
        """The trace of one example ``x`` (its key already split off the batch's)."""

    @abc.abstractmethod
    def valid(self, valid: Array) -> Array:
        """The batch's validity ``(B,)`` given its simulations' ``valid`` ``(B,)``."""

    @abc.abstractmethod
    def with_surrogate(self, surrogate: AbstractSurrogate) -> AbstractNetworkObjective:
        """The same objective with ``surrogate`` on every neuron that takes one."""

    @abc.abstractmethod
    def tail(self, params: Any, key: Array, first: int) -> AbstractNetworkObjective:
        """Layers ``first..`` as an objective of their own (see :class:`TailObjective`)."""

    @property
    def batch_size(self) -> int:
        return int(np.shape(self.inputs)[0])

    def params(self) -> tuple[dict[str, Array], ...]:
        return network_params(self.net)

    def network(self, params: Any) -> Network:
        return network_with_params(self.net, params)

    def _traces(self, params: Any, key: Array, perturb: Any) -> Trace:
        """Traces of the batch (leading axis B); ``perturb``: None or one perturbation per
        example, stacked along a leading batch axis."""
        keys = jax.random.split(key, self.batch_size)
        if perturb is None:
            return jax.vmap(lambda x, k: self.simulate_example(params, x, k))(self.inputs, keys)
        return jax.vmap(lambda x, k, p: self.simulate_example(params, x, k, p))(
            self.inputs, keys, perturb
        )

    def readout(self, params: Any, key: Array, perturb: Any = None) -> tuple[Array, Array]:
        """Readout ``(B, ...)`` and validity ``(B,)`` of the whole batch."""
        trace = self._traces(params, key, perturb)
        return self.read(trace), self.valid(trace.valid)

    def run(self, params: Any, key: Array, perturb: Any = None) -> tuple[Array, Any]:
        """Per-example losses ``(B,)`` and what the (stacked, per-example) perturbations
        accumulated (``Trace.perturbation``), summed over the batch."""
        trace = self._traces(params, key, perturb)
        losses = jax.vmap(self.loss)(self.read(trace), self.targets)
        losses = jnp.where(self.valid(trace.valid), losses, jnp.nan)
        return losses, jax.tree.map(lambda e: e.sum(0), trace.perturbation)

    def per_example(self, params: Any, key: Array, perturb: Any = None) -> Array:
        """Losses ``(B,)``; ``perturb`` as in :meth:`run`."""
        return self.run(params, key, perturb)[0]

    def readout_gradient(self, params: Any, key: Array) -> tuple[Array, Array]:
        """Per-example losses ``(B,)`` and the gradient of the batch-mean loss with respect to
        each example's readout ``(B, ...)`` (autodiff through the loss only, never
        through the network)."""
        readout, valid = self.readout(params, key)
        losses, grads = jax.vmap(jax.value_and_grad(self.loss))(readout, self.targets)
        losses = jnp.where(valid, losses, jnp.nan)
        return losses, grads / self.batch_size

    def __call__(self, params: Any, key: Array) -> Array:
        return self.per_example(params, key).mean()

    def population(self, params: Any, keys: Array) -> Array:
        (params, keys), n = shard_population((params, keys))
        return jax.vmap(self.__call__)(params, keys)[:n]


class NetworkObjective(AbstractNetworkObjective):
    """Loss of a network on a batch.

    Attributes:
        net: the network (its weights are the starting point; :meth:`params` returns them).
        inputs: ``(B, n_in)`` constant inputs or ``(B, steps, n_in)`` per step.
        targets: ``(B, ...)`` whatever ``loss`` expects (labels for classification, target
            spike trains for spike-train losses).
        loss: per-example loss on the readout.
        dt: time step (ms); ignored by rate units.
        steps: number of steps (1 for an ordinary feed-forward network).
        read: what the loss sees (:class:`MeanOutput`, the default, :class:`MeanVoltage` or
            :class:`SpikeTrains`).
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
        if np.ndim(self.inputs) == 3 and np.shape(self.inputs)[1] != self.steps:
            raise ValueError(
                f"NetworkObjective.inputs has {np.shape(self.inputs)[1]} steps per example but "
                f"steps = {self.steps}; make them agree."
            )

    def with_batch(self, inputs: Array, targets: Array) -> NetworkObjective:
        return dataclasses.replace(self, inputs=inputs, targets=targets)

    def with_surrogate(self, surrogate: AbstractSurrogate) -> NetworkObjective:
        return dataclasses.replace(self, net=_with_surrogate(self.net, surrogate))

    def simulate_example(
        self, params: Any, x: Array, key: Array, perturb: AbstractPerturbation | None = None
    ) -> Trace:
        return simulate(
            self.network(params), x, dt=self.dt, steps=self.steps, key=key,
            record=self.read.record, check=False, perturb=perturb,
        )  # fmt: skip

    def valid(self, valid: Array) -> Array:
        return valid

    def tail(self, params: Any, key: Array, first: int) -> TailObjective:
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
        return TailObjective(
            Network(self.net.layers[first:]), sent, self.targets, self.loss, self.dt,
            self.steps, self.read, first=first, head_valid=valid,
        )  # fmt: skip


class TailObjective(AbstractNetworkObjective):
    """The upper layers ``first..`` of a :class:`NetworkObjective`, fed with the recorded
    output of the layers below (:meth:`NetworkObjective.tail`). Layer ``j`` here is layer
    ``first + j`` of the whole network: its neuron noise comes from the same stream.

    Attributes:
        net: layers ``first..`` of the whole network.
        inputs: ``(B, steps, n)`` what layer ``first - 1`` sent.
        first: index of the first layer kept in the whole network.
        head_valid: ``(B,)`` whether the layers below stayed valid.
        targets, loss, dt, steps, read: those of the whole network's objective.
    """

    net: Network
    inputs: Array
    targets: Array
    loss: AbstractLoss
    dt: float
    steps: int = eqx.field(static=True)
    read: AbstractReadout
    first: int = eqx.field(static=True)
    head_valid: Array

    def simulate_example(
        self, params: Any, x: Array, key: Array, perturb: AbstractPerturbation | None = None
    ) -> Trace:
        net = self.network(params)
        streams = tuple(
            stream_keys(jax.random.fold_in(key, self.first + j), (la.n_out,))
            if la.neuron.stochastic
            else None
            for j, la in enumerate(net.layers)
        )
        return simulate(
            net, x, dt=self.dt, steps=self.steps, key=key, record=self.read.record,
            check=False, perturb=perturb, streams=streams,
        )  # fmt: skip

    def valid(self, valid: Array) -> Array:
        return valid & self.head_valid

    def with_surrogate(self, surrogate: AbstractSurrogate) -> TailObjective:
        return dataclasses.replace(self, net=_with_surrogate(self.net, surrogate))

    def tail(self, params: Any, key: Array, first: int) -> AbstractNetworkObjective:
        raise ValueError(
            "TailObjective.tail: take the tail of the whole network's objective at "
            f"{self.first} + {first} instead."
        )
