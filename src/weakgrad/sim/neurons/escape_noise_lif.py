"""Stochastic LIF neuron with escape noise.

The membrane follows the LIF equation; instead of a hard threshold the neuron spikes in
each step with probability ``sigmoid(beta * (V - theta))`` and then resets. This is the
stochastic neuron of Gygax & Zenke, "Elucidating the theoretical underpinnings of
surrogate gradient learning in spiking neural networks" (2024), whose escape-noise
derivative is the matching surrogate gradient.
"""

from __future__ import annotations

import jax
from jax import Array

from weakgrad.sim.neurons._base import NeuronOutput
from weakgrad.sim.neurons.lif import LIF
from weakgrad.sim.random import StepKey, uniform
from weakgrad.sim.surrogates import EscapeNoiseMatched, spike_with_surrogate

__all__ = ["EscapeNoiseLIF"]


class EscapeNoiseLIF(LIF):
    """LIF with escape noise: per-step spike probability ``sigmoid(beta (V - theta))``.

    Units as :class:`~weakgrad.sim.neurons.lif.LIF`; ``beta`` in 1/mV, ``theta`` (the
    escape threshold, ``v_threshold`` of the parent is unused) in mV.
    """

    beta: float = 1.0
    theta: float = -50.0

    @property
    def stochastic(self) -> bool:
        return True

    def spike_probability(self, v: Array) -> Array:
        """Probability of a spike in one step at membrane potential ``v`` (mV)."""
        return jax.nn.sigmoid(self.beta * (v - self.theta))

    def step(
        self, state: Array, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[Array, NeuronOutput]:
        if key is None:
            raise ValueError("EscapeNoiseLIF draws its spikes: pass key=StepKey(...).")
        v = self.integrate(state, current, dt)
        drawn = (uniform(key, v.dtype) < self.spike_probability(v)).astype(v.dtype)
        surrogate = self.surrogate
        if isinstance(surrogate, EscapeNoiseMatched) and surrogate.beta is None:
            surrogate = EscapeNoiseMatched(self.beta)
        spike = spike_with_surrogate(v - self.theta, drawn, surrogate)
        return self.reset(v, spike), NeuronOutput(spike, spike)

    @property
    def reset_threshold(self) -> float:
        return self.theta
