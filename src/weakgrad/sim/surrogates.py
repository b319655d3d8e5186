"""Surrogate derivatives for the spike nonlinearity (for surrogate-gradient BPTT).

A spiking neuron's output is a step function of its membrane potential, whose derivative is
zero almost everywhere. Neurons that take a ``surrogate`` emit the exact spike on the
forward pass and use ``surrogate.derivative(v - threshold)`` on the backward pass.

- :class:`SuperSpike`: ``1 / (1 + beta |x|)^2`` (Zenke & Ganguli, Neural Comput. 2018).
- :class:`SigmoidSurrogate`: the derivative of ``sigmoid(beta x)``.
- :class:`EscapeNoiseMatched`: the derivative of the neuron's own escape-noise function
  ``sigmoid(beta_N (v - theta))``; with it, surrogate-gradient descent on a stochastic
  network is a smoothed stochastic derivative (Gygax & Zenke 2024, study 002). Its ``beta``
  defaults to the neuron's.

``x`` and ``beta`` are in mV and 1/mV for membrane models (units of the activation for
rate units).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

__all__ = [
    "AbstractSurrogate",
    "SuperSpike",
    "SigmoidSurrogate",
    "EscapeNoiseMatched",
    "spike_with_surrogate",
    "all_surrogates",
]


class AbstractSurrogate(eqx.Module):
    @abc.abstractmethod
    def derivative(self, x: Array) -> Array:
        """The pseudo-derivative of the spike with respect to ``x = v - threshold``."""


class SuperSpike(AbstractSurrogate):
    """Fast-sigmoid surrogate ``1 / (1 + beta |x|)^2``."""

    beta: float = eqx.field(static=True, default=10.0)

    def derivative(self, x: Array) -> Array:
        return 1.0 / (1.0 + self.beta * jnp.abs(x)) ** 2


def _sigmoid_derivative(x: Array, beta: float) -> Array:
    s = jax.nn.sigmoid(beta * x)
    return beta * s * (1.0 - s)


class SigmoidSurrogate(AbstractSurrogate):
    """Derivative of a sigmoid of slope ``beta``: ``beta s (1 - s)``, ``s = sigmoid(beta x)``."""

    beta: float = eqx.field(static=True, default=1.0)

    def derivative(self, x: Array) -> Array:
        return _sigmoid_derivative(x, self.beta)


class EscapeNoiseMatched(AbstractSurrogate):
    """The escape-noise derivative; ``beta=None`` takes the neuron's escape-noise slope
    (an ``EscapeNoiseLIF``); other neurons need an explicit ``beta``."""

    beta: float | None = eqx.field(static=True, default=None)

    def derivative(self, x: Array) -> Array:
        if self.beta is None:
            raise ValueError(
                "EscapeNoiseMatched(beta=None) takes beta from an EscapeNoiseLIF; for a "
                "deterministic neuron pass the slope explicitly, e.g. EscapeNoiseMatched(beta=1.0)."
            )
        return _sigmoid_derivative(x, self.beta)


def all_surrogates() -> list[AbstractSurrogate]:
    """One instance of every surrogate (drives the contract tests)."""
    return [SuperSpike(), SuperSpike(beta=2.0), SigmoidSurrogate(), EscapeNoiseMatched(beta=0.5)]


def spike_with_surrogate(x: Array, value: Array, surrogate: AbstractSurrogate | None) -> Array:
    """``value`` (the exact spike) on the forward pass; ``surrogate.derivative(x) dx`` on the
    backward pass. Without a surrogate, ``value`` unchanged (zero derivative)."""
    if surrogate is None:
        return value

    @jax.custom_jvp
    def spike(x, value):
        return value

    @spike.defjvp
    def spike_jvp(primals, tangents):
        x, value = primals
        dx, _ = tangents
        return value, surrogate.derivative(x).astype(value.dtype) * dx

    return spike(x, jax.lax.stop_gradient(value))
