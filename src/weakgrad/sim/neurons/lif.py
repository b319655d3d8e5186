"""Leaky integrate-and-fire neuron with hard or subtractive reset.

Membrane: ``tau_m dV/dt = -(V - v_rest) + r_m I``, integrated exactly over each step for
the step's constant current; a spike is emitted when V reaches ``v_threshold`` after the
update, followed by a reset. Closed-form firing rate for constant suprathreshold current
(hard reset to ``v_rest``, continuous time): ``1 / (tau_m ln(r_m I / (r_m I - (v_threshold
- v_rest))))`` (Gerstner et al., Neuronal Dynamics, sec. 1.3).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.neurons._base import AbstractNeuron, NeuronOutput
from weakgrad.sim.random import StepKey
from weakgrad.sim.surrogates import AbstractSurrogate, spike_with_surrogate

__all__ = ["LIF", "lif_rate"]


class LIF(AbstractNeuron):
    """Leaky integrate-and-fire neuron.

    Units: V in mV, time in ms, current in nA, ``r_m`` in MOhm (so ``r_m * I`` is in mV).

    Attributes:
        subtractive: if True, a spike subtracts ``v_threshold - v_reset`` from V instead of
            setting V to ``v_reset`` (keeps the overshoot; rates then have no discretisation
            bias that accumulates across spikes).
        surrogate: optional surrogate derivative used for the spike on the backward pass
            (:mod:`weakgrad.sim.surrogates`); None: the exact step (zero derivative).
    """

    tau_m: float = 10.0
    r_m: float = 10.0
    v_rest: float = -65.0
    v_reset: float = -65.0
    v_threshold: float = -50.0
    subtractive: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate | None = None

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jnp.full(shape, self.v_rest, dtype)

    def integrate(self, v: Array, current: Array, dt: float | Array) -> Array:
        """Membrane potential after ``dt`` without threshold (exact for constant current)."""
        v_inf = self.v_rest + self.r_m * current
        return v_inf + (v - v_inf) * jnp.exp(-dt / self.tau_m)

    @property
    def reset_threshold(self) -> float:
        """The potential (mV) a subtractive reset measures its jump from."""
        return self.v_threshold

    def reset(self, v: Array, spike: Array) -> Array:
        if self.subtractive:
            return v - spike * (self.reset_threshold - self.v_reset)
        return jnp.where(spike > 0, jnp.asarray(self.v_reset, v.dtype), v)

    def step(
        self, state: Array, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[Array, NeuronOutput]:
        v = self.integrate(state, current, dt)
        exact = (v >= self.v_threshold).astype(v.dtype)
        spike = spike_with_surrogate(v - self.v_threshold, exact, self.surrogate)
        return self.reset(v, spike), NeuronOutput(spike, spike)

    def voltage(self, state: Array) -> Array:
        return state


def lif_rate(neuron: LIF, current: Array) -> Array:
    """Closed-form firing rate (1/ms) of a hard-reset LIF with ``v_reset == v_rest``."""
    drive = neuron.r_m * jnp.asarray(current)
    gap = neuron.v_threshold - neuron.v_rest
    safe = jnp.where(drive > gap, drive, 2 * gap)
    rate = 1.0 / (neuron.tau_m * jnp.log(safe / (safe - gap)))
    return jnp.where(drive > gap, rate, 0.0)
