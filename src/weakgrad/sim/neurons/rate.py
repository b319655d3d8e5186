"""Stateless rate units: binary perceptron, sigmoid and linear.

They make an ordinary (artificial) network the same object as a spiking one: the
"state" is the current activation, ``dt`` is ignored, and ``spike`` is 1 where the unit
is active (perceptron) or the activation itself (sigmoid, linear).
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.neurons._base import AbstractNeuron, NeuronOutput, replace_surrogate
from weakgrad.sim.random import StepKey
from weakgrad.sim.surrogates import AbstractSurrogate, spike_with_surrogate

__all__ = ["Perceptron", "Sigmoid", "Linear"]


class _RateUnit(AbstractNeuron):
    """A memoryless unit: its output is ``activation(current)`` (abstract)."""

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jnp.zeros(shape, dtype)

    @abc.abstractmethod
    def activation(self, x: Array) -> Array:
        """The unit's output for input ``x``."""

    def step(
        self, state: Array, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[Array, NeuronOutput]:
        a = self.activation(current).astype(state.dtype)
        return a, NeuronOutput(a, a)

    def voltage(self, state: Array) -> Array:
        return state


class Perceptron(_RateUnit):
    """Binary unit: 1 where the input exceeds ``threshold``, else 0 (derivative 0 a.e.,
    or ``surrogate.derivative(x - threshold)`` on the backward pass if given)."""

    threshold: float = 0.0
    surrogate: AbstractSurrogate | None = None

    def with_surrogate(self, surrogate: AbstractSurrogate | None) -> AbstractNeuron:
        return replace_surrogate(self, surrogate)

    def activation(self, x: Array) -> Array:
        exact = (x > self.threshold).astype(x.dtype)
        return spike_with_surrogate(x - self.threshold, exact, self.surrogate)


class Sigmoid(_RateUnit):
    """Logistic unit ``1 / (1 + exp(-x))``."""

    def activation(self, x: Array) -> Array:
        return jax.nn.sigmoid(x)


class Linear(_RateUnit):
    """Identity unit (a linear layer)."""

    def activation(self, x: Array) -> Array:
        return x
