"""Hodgkin-Huxley squid-axon neuron, integrated with exponential Euler.

References:
    A. L. Hodgkin and A. F. Huxley, J. Physiol. 117:500-544 (1952), with the modern
    convention of a -65 mV resting potential (rates as in Dayan & Abbott, ch. 5).
    Exponential Euler as in Brian2 (``method="exponential_euler"``): every variable
    that is linear in itself given the others is advanced by its exact exponential
    solution over one step, all from the previous step's values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.neurons._base import AbstractNeuron, NeuronOutput, replace_surrogate
from weakgrad.sim.random import StepKey, normal
from weakgrad.sim.surrogates import AbstractSurrogate, spike_with_surrogate

__all__ = ["HodgkinHuxley", "HHState"]


class HHState(NamedTuple):
    """Membrane potential ``v`` (mV) and the gating variables ``m``, ``h``, ``n`` (1)."""

    v: Array
    m: Array
    h: Array
    n: Array


def _x_over_1mexp(x: Array) -> Array:
    """x / (1 - exp(-x)), finite and differentiable at x = 0 (limit 1)."""
    small = jnp.abs(x) < 1e-2
    xs = jnp.where(small, 1.0, x)  # keeps the unused branch (and its gradient) finite
    return jnp.where(small, 1.0 + x * (0.5 + x / 12.0), xs / (-jnp.expm1(-xs)))


def rates(v: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Opening and closing rates (1/ms) of m, h, n at membrane potential ``v`` (mV)."""
    alpha_m = _x_over_1mexp((v + 40.0) / 10.0)  # = 0.1 (v+40) / (1 - exp(-(v+40)/10))
    beta_m = 4.0 * jnp.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * jnp.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0))
    alpha_n = 0.1 * _x_over_1mexp((v + 55.0) / 10.0)  # = 0.01 (v+55) / (1 - exp(-(v+55)/10))
    beta_n = 0.125 * jnp.exp(-(v + 65.0) / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def _gate(x: Array, alpha: Array, beta: Array, dt: Any) -> Array:
    rate = alpha + beta
    x_inf = alpha / rate
    return x_inf + (x - x_inf) * jnp.exp(-dt * rate)


class HodgkinHuxley(AbstractNeuron):
    """Single-compartment Hodgkin-Huxley neuron (per unit membrane area).

    Units: ``v`` in mV, time in ms, currents in uA/cm^2, conductances in mS/cm^2,
    capacitance in uF/cm^2.

    Attributes:
        noise_std: standard deviation (uA/cm^2) of an independent Gaussian current drawn
            per neuron and per step and held for that step. Its effect depends on dt: the
            equivalent white-noise intensity is ``noise_std * sqrt(dt)``. 0 = deterministic.
        threshold: spike threshold (mV); a spike is an upward crossing within one step.
        graded: if True the neuron sends graded transmitter release
            ``1 / (1 + exp(-(v - release_v_half) / release_slope))`` (unitless, in [0, 1],
            Destexhe et al. 1994) to its synapses, which keeps outputs differentiable;
            if False it sends its spikes.
        surrogate: optional surrogate derivative for the spikes sent when ``graded`` is
            False (:mod:`weakgrad.sim.surrogates`), evaluated at ``v - threshold``.
    """

    noise_std: float = eqx.field(static=True, default=0.0)
    threshold: float = 0.0
    graded: bool = eqx.field(static=True, default=True)
    release_v_half: float = 2.0
    release_slope: float = 5.0
    c_m: float = 1.0
    g_na: float = 120.0
    g_k: float = 36.0
    g_l: float = 0.3
    e_na: float = 50.0
    e_k: float = -77.0
    e_l: float = -54.4
    v_init: float = -65.0
    surrogate: AbstractSurrogate | None = None

    def with_surrogate(self, surrogate: AbstractSurrogate | None) -> AbstractNeuron:
        return replace_surrogate(self, surrogate)

    def __check_init__(self):
        if not self.noise_std >= 0:
            raise ValueError(
                f"HodgkinHuxley.noise_std must be >= 0 uA/cm^2, got {self.noise_std}; "
                "use 0 for a deterministic neuron."
            )

    @property
    def stochastic(self) -> bool:
        return self.noise_std > 0

    @property
    def max_dt(self) -> float:
        # Exponential Euler never overflows here, but above ~0.25 ms it loses whole spike
        # trains and v overshoots E_Na: results are finite garbage, so refuse them.
        return 0.25

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> HHState:
        """Rest: ``v = v_init`` and every gate at its steady state for that voltage."""
        v = jnp.full(shape, self.v_init, dtype)
        am, bm, ah, bh, an, bn = rates(v)
        return HHState(v, am / (am + bm), ah / (ah + bh), an / (an + bn))

    def release(self, v: Array) -> Array:
        """Graded transmitter release s(v) in [0, 1]."""
        return jax.nn.sigmoid((v - self.release_v_half) / self.release_slope)

    def step(
        self, state: HHState, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[HHState, NeuronOutput]:
        v, m, h, n = state
        if self.noise_std > 0:
            if key is None:
                raise ValueError("HodgkinHuxley with noise_std > 0 needs key=StepKey(...).")
            current = current + self.noise_std * normal(key, v.dtype)
        am, bm, ah, bh, an, bn = rates(v)
        g_na = self.g_na * m * m * m * h
        g_k = self.g_k * n * n * n * n
        g = g_na + g_k + self.g_l
        v_inf = (current + g_na * self.e_na + g_k * self.e_k + self.g_l * self.e_l) / g
        v_new = v_inf + (v - v_inf) * jnp.exp(-dt * g / self.c_m)
        new = HHState(v_new, _gate(m, am, bm, dt), _gate(h, ah, bh, dt), _gate(n, an, bn, dt))
        exact = ((v <= self.threshold) & (v_new > self.threshold)).astype(v.dtype)
        # The spike carries the surrogate derivative whether or not the neuron sends it on:
        # spike-train readouts read it from graded neurons too (with no surrogate: exact).
        spike = spike_with_surrogate(v_new - self.threshold, exact, self.surrogate)
        value = self.release(v_new) if self.graded else spike
        return new, NeuronOutput(spike, value)

    def voltage(self, state: HHState) -> Array:
        return state.v

    def is_valid(self, state: HHState) -> Array:
        # Exponential Euler keeps v finite and between the reversal potentials under moderate
        # input; a strong hyperpolarising current legitimately takes it well below E_K
        # (-50 uA/cm^2 holds v near -220 mV, as in an MNIST network with negative weights).
        # Far beyond that (or non-finite) the integration has failed.
        return jnp.isfinite(state.v) & (jnp.abs(state.v) < 1000.0) & jnp.isfinite(state.n)
