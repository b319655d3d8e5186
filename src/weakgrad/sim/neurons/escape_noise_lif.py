"""Stochastic LIF neuron with escape noise.

The membrane follows the LIF equation; instead of a hard threshold the neuron spikes in
each step with probability ``sigmoid(beta * (V - theta))`` and then resets. This is the
stochastic neuron of Gygax & Zenke, "Elucidating the theoretical underpinnings of
surrogate gradient learning in spiking neural networks" (2024), whose escape-noise
derivative is the matching surrogate gradient.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.neurons._base import AbstractNeuron, NeuronOutput, replace_surrogate
from weakgrad.sim.neurons.lif import lif_integrate, lif_reset
from weakgrad.sim.random import StepKey, uniform
from weakgrad.sim.surrogates import AbstractSurrogate, EscapeNoiseMatched, spike_with_surrogate

__all__ = ["EscapeNoiseLIF"]


class EscapeNoiseLIF(AbstractNeuron):
    """LIF with escape noise: per-step spike probability ``sigmoid(beta (V - theta))``.

    Units as :class:`~weakgrad.sim.neurons.lif.LIF` (V in mV, time in ms, current in nA,
    ``r_m`` in MOhm); ``beta`` in 1/mV, ``theta`` (the escape threshold) in mV. A sibling of
    LIF sharing its membrane equation and reset (:func:`lif_integrate`, :func:`lif_reset`).

    Attributes:
        subtractive: a spike subtracts ``theta - v_reset`` from V instead of resetting it.
        surrogate: derivative of the spike on the backward pass; ``EscapeNoiseMatched()``
            (beta None) takes this neuron's ``beta``: the escape noise's own derivative.
    """

    tau_m: float = 10.0
    r_m: float = 10.0
    v_rest: float = -65.0
    v_reset: float = -65.0
    subtractive: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate | None = None
    beta: float = 1.0
    theta: float = -50.0

    def with_surrogate(self, surrogate: AbstractSurrogate | None) -> AbstractNeuron:
        return replace_surrogate(self, surrogate)

    @property
    def stochastic(self) -> bool:
        return True

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jnp.full(shape, self.v_rest, dtype)

    def voltage(self, state: Array) -> Array:
        return state

    def spike_probability(self, v: Array) -> Array:
        """Probability of a spike in one step at membrane potential ``v`` (mV)."""
        return jax.nn.sigmoid(self.beta * (v - self.theta))

    def step(
        self, state: Array, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[Array, NeuronOutput]:
        if key is None:
            raise ValueError("EscapeNoiseLIF draws its spikes: pass key=StepKey(...).")
        v = lif_integrate(state, current, dt, tau_m=self.tau_m, r_m=self.r_m, v_rest=self.v_rest)
        drawn = (uniform(key, v.dtype) < self.spike_probability(v)).astype(v.dtype)
        surrogate = self.surrogate
        if isinstance(surrogate, EscapeNoiseMatched) and surrogate.beta is None:
            surrogate = EscapeNoiseMatched(self.beta)
        spike = spike_with_surrogate(v - self.theta, drawn, surrogate)
        v = lif_reset(
            v, spike, threshold=self.theta, v_reset=self.v_reset, subtractive=self.subtractive
        )
        return v, NeuronOutput(spike, spike)
