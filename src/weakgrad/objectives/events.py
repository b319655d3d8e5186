"""Objectives on event-simulated LIF networks (:mod:`weakgrad.sim.event_lif`): what EventProp
needs, usable by surrogate-gradient BPTT and the sampling estimators too.

:class:`EventObjective` is a network objective whose inputs are spike times (one per input,
ms) and whose readout is either the output layer's first spike times
(:class:`FirstSpikeTimes`, with :class:`FirstSpikeCrossEntropy`: the time-to-first-spike
loss) or the maximum over time of its (non-spiking) membrane potentials
(:class:`MaxVoltage`, with :class:`~weakgrad.objectives.losses.SoftmaxCrossEntropy`: the
max-voltage loss); both as in Wunderlich & Pehle 2021 (Sci. Rep. 11:12829).

- Plain and population evaluation (sampling estimators: regression, smoothing, ...) run the
  exact event-driven simulation.
- :class:`~weakgrad.estimators.EventProp` runs it too and then the adjoint system.
- :meth:`EventObjective.with_surrogate` gives the same network on a time grid of ``dt`` ms
  with a surrogate spike derivative: what
  :class:`~weakgrad.estimators.SurrogateGradient` differentiates (BPTT).
- Plain :class:`~weakgrad.estimators.Autodiff` is refused by JAX (no reverse mode through
  the event loop's ``while_loop``); EventProp is the exact gradient it would compute.
- Node perturbation is refused (TypeError): there is no per-step drive to perturb.

An example whose spikes exceed the network's ``max_events`` has lost spikes: its loss is
NaN (so is EventProp's gradient), never a silently wrong value.
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

from weakgrad.objectives.losses import AbstractLoss
from weakgrad.objectives.network import AbstractNetworkObjective, AbstractReadout
from weakgrad.sim.event_lif import EventNetwork, EventTrace, GridTrace
from weakgrad.sim.network import Record
from weakgrad.sim.surrogates import AbstractSurrogate

__all__ = [
    "AbstractEventReadout",
    "FirstSpikeTimes",
    "MaxVoltage",
    "FirstSpikeCrossEntropy",
    "EventObjective",
]

_NO_RECORD = Record(counts=False, mean_output=False)


class AbstractEventReadout(AbstractReadout):
    """A readout of an event-simulated network's output layer, ``(n_out,)`` per example,
    that says where the loss's derivative enters the adjoint system."""

    record: ClassVar[Record] = _NO_RECORD
    spiking_output: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def __call__(self, trace: EventTrace | GridTrace) -> Array: ...

    @abc.abstractmethod
    def adjoint_sources(self, g: Array) -> tuple[Array, Array]:
        """``dL/d(readout)`` -> (``dL/d first spike times``, ``dL/d max potentials``)."""


class FirstSpikeTimes(AbstractEventReadout):
    """First spike time (ms) of each output neuron; the window's end where it has none."""

    spiking_output: ClassVar[bool] = True

    def __call__(self, trace: EventTrace | GridTrace) -> Array:
        return trace.first_time

    def adjoint_sources(self, g: Array) -> tuple[Array, Array]:
        return g, jnp.zeros_like(g)


class MaxVoltage(AbstractEventReadout):
    """Maximum over the window of each (non-spiking) output neuron's potential
    (dimensionless, threshold units)."""

    spiking_output: ClassVar[bool] = False

    def __call__(self, trace: EventTrace | GridTrace) -> Array:
        return trace.vmax

    def adjoint_sources(self, g: Array) -> tuple[Array, Array]:
        return jnp.zeros_like(g), g


class FirstSpikeCrossEntropy(AbstractLoss):
    """Time-to-first-spike cross-entropy (Wunderlich & Pehle 2021, eq. 13; Goeltz et al.
    2021): ``-log softmax(-t / tau0)[label] + alpha (exp(t_label / tau1) - 1)``, ``t`` the
    output first spike times in ms. The second term pushes the label neuron to fire early.

    Attributes:
        tau0: softmax temperature (ms).
        tau1: time constant of the early-firing term (ms).
        alpha: weight of the early-firing term.
    """

    tau0: float = 0.5
    tau1: float = 6.4
    alpha: float = 3e-3

    def __check_init__(self):
        for name in ("tau0", "tau1"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"FirstSpikeCrossEntropy.{name} must be > 0 ms, got {v!r}.")
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ValueError(f"FirstSpikeCrossEntropy.alpha must be >= 0, got {self.alpha!r}.")

    def __call__(self, readout: Array, target: Array) -> Array:
        logp = jax.nn.log_softmax(-readout / self.tau0)
        t = jnp.take(readout, target)
        return -jnp.take(logp, target) + self.alpha * (jnp.exp(t / self.tau1) - 1.0)


class EventObjective(AbstractNetworkObjective):
    """Loss of an event-simulated LIF network on a batch of input spike times.

    Attributes:
        net: the network (:class:`~weakgrad.sim.event_lif.EventNetwork`); its
            ``spiking_output`` must match the readout.
        weights: the starting parameters (:meth:`params` returns them).
        inputs: ``(B, n_in)`` input spike times (ms; ``inf``: no spike).
        targets: ``(B,)`` integer labels.
        loss: per-example loss on the readout (:class:`FirstSpikeCrossEntropy` for first
            spike times, ``SoftmaxCrossEntropy`` for maximum potentials).
        read: :class:`FirstSpikeTimes` or :class:`MaxVoltage`.
        dt: the time step (ms) of the grid the surrogate twin runs on (``steps``:
            ``duration / dt`` of them, set from ``dt``).
        surrogate: None: the exact event-driven network; a surrogate: the same network on
            the grid with that spike derivative (:meth:`with_surrogate`).
    """

    net: EventNetwork
    inputs: Array
    targets: Array
    loss: AbstractLoss
    dt: float
    steps: int = eqx.field(static=True)
    read: AbstractEventReadout
    weights: tuple[dict[str, Array], ...]
    surrogate: AbstractSurrogate | None

    def __init__(
        self, net: EventNetwork, weights: tuple[dict[str, Array], ...], inputs: Array,
        targets: Array, loss: AbstractLoss, read: AbstractEventReadout, *, dt: float = 0.1,
        surrogate: AbstractSurrogate | None = None, steps: int | None = None,
    ):  # fmt: skip
        self.net, self.weights, self.inputs, self.targets = net, weights, inputs, targets
        self.loss, self.read, self.dt, self.surrogate = loss, read, dt, surrogate
        # The grid's steps (the surrogate twin); ``steps`` is accepted for dataclasses.replace.
        duration = net.duration if isinstance(net, EventNetwork) else 1.0
        ok = isinstance(dt, int | float) and dt > 0
        self.steps = max(1, int(round(duration / dt))) if ok else 1
        del steps

    def __check_init__(self):
        if not isinstance(self.net, EventNetwork):
            raise TypeError(
                f"EventObjective.net must be a weakgrad.sim.event_lif.EventNetwork, got "
                f"{type(self.net).__name__}."
            )
        if not isinstance(self.read, AbstractEventReadout):
            raise TypeError(
                "EventObjective.read must be FirstSpikeTimes() or MaxVoltage() (from "
                f"weakgrad.objectives.events), got {self.read!r}."
            )
        if self.read.spiking_output != self.net.spiking_output:
            raise ValueError(
                f"EventObjective.read = {type(self.read).__name__}() needs "
                f"EventNetwork(spiking_output={self.read.spiking_output}), got "
                f"spiking_output={self.net.spiking_output}."
            )
        if np.ndim(self.inputs) != 2 or np.shape(self.inputs)[1] != self.net.n_in:
            raise ValueError(
                f"EventObjective.inputs must be (B, {self.net.n_in}) spike times, got shape "
                f"{np.shape(self.inputs)}."
            )
        if np.shape(self.targets) != np.shape(self.inputs)[:1]:
            raise ValueError(
                f"EventObjective.targets must be ({np.shape(self.inputs)[0]},) labels, got "
                f"shape {np.shape(self.targets)}."
            )
        if not (isinstance(self.dt, int | float) and 0 < self.dt <= self.net.duration):
            raise ValueError(
                f"EventObjective.dt must be in (0, duration = {self.net.duration}] ms, got "
                f"{self.dt!r}."
            )
        self.net.check_params(self.weights)

    # --- AbstractNetworkObjective ---------------------------------------------------------

    def params(self) -> tuple[dict[str, Array], ...]:
        return self.weights

    def network(self, params: Any) -> EventNetwork:
        return self.net

    def with_batch(self, inputs: Array, targets: Array) -> EventObjective:
        return dataclasses.replace(self, inputs=inputs, targets=targets)

    def with_surrogate(self, surrogate: AbstractSurrogate) -> EventObjective:
        return dataclasses.replace(self, surrogate=surrogate)

    def simulate_example(
        self, params: Any, x: Array, key: Array, perturb: Any = None
    ) -> EventTrace | GridTrace:
        if perturb is not None:
            raise TypeError(
                "EventObjective runs an event-driven network: no perturbation of a running "
                "simulation (node perturbation); use EventProp, SurrogateGradient or a "
                "weight-space estimator (regression, smoothing)."
            )
        del key  # deterministic neurons
        if self.surrogate is None:
            return self.net.simulate(params, x)
        return self.net.simulate_grid(params, x, dt=self.dt, surrogate=self.surrogate)

    def valid(self, valid: Array) -> Array:
        return valid

    def tail(self, params: Any, key: Array, first: int) -> AbstractNetworkObjective:
        raise ValueError(
            "EventObjective.tail: an event-driven network has no recorded per-step input to "
            "split at a layer; perturb all layers instead."
        )

    def traces(self, params: Any) -> EventTrace | GridTrace:
        """The batch's traces (leading axis B)."""
        return jax.vmap(lambda x: self.simulate_example(params, x, None))(self.inputs)

    def readout(self, params: Any, key: Array, perturb: Any = None) -> tuple[Array, Array]:
        """Readout ``(B, n_out)`` and validity ``(B,)`` (False where spikes were lost)."""
        if perturb is not None:
            self.simulate_example(params, self.inputs[0], key, perturb)  # raises
        trace = self.traces(params)
        return self.read(trace), ~trace.overflow

    def run(self, params: Any, key: Array, perturb: Any = None) -> tuple[Array, Any]:
        readout, valid = self.readout(params, key, perturb)
        losses = jax.vmap(self.loss)(readout, self.targets)
        return jnp.where(valid, losses, jnp.nan), None

    def lost_spikes(self, params: Any) -> Array:
        """Number of examples of the batch whose spikes exceeded ``net.max_events``."""
        return jnp.sum(self.traces(params).overflow)
