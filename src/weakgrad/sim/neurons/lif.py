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

from weakgrad.sim.neurons._base import AbstractNeuron, NeuronOutput, replace_surrogate
from weakgrad.sim.random import StepKey
from weakgrad.sim.surrogates import AbstractSurrogate, spike_with_surrogate

__all__ = ["LIF", "lif_integrate", "lif_rate"]


def lif_integrate(
    v: Array, current: Array, dt: float | Array, *, tau_m: float, r_m: float, v_rest: float
) -> Array:
    """Membrane potential (mV) after ``dt`` ms of ``tau_m dV/dt = -(V - v_rest) + r_m I``
    without threshold: exact for a current constant over the step. Shared by the LIF models."""
    v_inf = v_rest + r_m * current
    return v_inf + (v - v_inf) * jnp.exp(-dt / tau_m)


def lif_reset(v: Array, spike: Array, *, threshold: float, v_reset: float, subtractive: bool):
    """Hard reset to ``v_reset`` where ``spike``, or (``subtractive``) ``threshold - v_reset``
    subtracted from V, keeping the overshoot. Shared by the LIF models."""
    if subtractive:
        return v - spike * (threshold - v_reset)
    return jnp.where(spike > 0, jnp.asarray(v_reset, v.dtype), v)


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

    def with_surrogate(self, surrogate: AbstractSurrogate | None) -> AbstractNeuron:
        return replace_surrogate(self, surrogate)

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jnp.full(shape, self.v_rest, dtype)

    def step(
        self, state: Array, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[Array, NeuronOutput]:
        v = lif_integrate(state, current, dt, tau_m=self.tau_m, r_m=self.r_m, v_rest=self.v_rest)
        exact = (v >= self.v_threshold).astype(v.dtype)
        spike = spike_with_surrogate(v - self.v_threshold, exact, self.surrogate)
        v = lif_reset(
            v, spike, threshold=self.v_threshold, v_reset=self.v_reset, subtractive=self.subtractive
        )
        return v, NeuronOutput(spike, spike)

    def voltage(self, state: Array) -> Array:
        return state


def lif_rate(neuron: LIF, current: Array) -> Array:
    """Closed-form firing rate (1/ms) of a hard-reset LIF with ``v_reset == v_rest``."""
    drive = neuron.r_m * jnp.asarray(current)
    gap = neuron.v_threshold - neuron.v_rest
    safe = jnp.where(drive > gap, drive, 2 * gap)
    rate = 1.0 / (neuron.tau_m * jnp.log(safe / (safe - gap)))
    return jnp.where(drive > gap, rate, 0.0)
