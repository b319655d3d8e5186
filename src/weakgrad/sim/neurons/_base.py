"""The interface every neuron model implements."""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.random import StepKey

__all__ = ["AbstractNeuron", "NeuronOutput"]


class NeuronOutput(NamedTuple):
    """What a neuron emits in one step.

    Attributes:
        spike: 1.0 where the neuron spiked during this step, else 0.0 (same dtype as state).
        value: what the neuron sends to its synapses: graded transmitter release, the spike
            itself, or a rate, depending on the model.
    """

    spike: Array
    value: Array


class AbstractNeuron(eqx.Module):
    """A neuron model: explicit state, one pure step.

    Implementations are frozen ``equinox`` modules whose fields are the model's parameters.
    All of them work elementwise, so one call advances any array of neurons.
    """

    @abc.abstractmethod
    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Any:
        """State of ``shape`` neurons at rest."""

    @abc.abstractmethod
    def step(
        self, state: Any, current: Array, dt: float | Array, *, key: StepKey | None = None
    ) -> tuple[Any, NeuronOutput]:
        """Advance by ``dt`` (ms) under input ``current`` held constant over the step."""

    @abc.abstractmethod
    def voltage(self, state: Any) -> Array:
        """The recorded membrane variable (mV for membrane models, the activation for rates)."""

    @property
    def stochastic(self) -> bool:
        """Whether ``step`` draws random numbers (and so needs ``key``)."""
        return False

    @property
    def max_dt(self) -> float | None:
        """Largest time step (ms) the integration scheme handles, or None if unlimited."""
        return None

    def with_surrogate(self, surrogate: Any) -> AbstractNeuron:
        """This neuron with ``surrogate`` as the derivative of its spikes on the backward
        pass (surrogate-gradient BPTT); neurons without a spike threshold return themselves."""
        return self

    def is_valid(self, state: Any) -> Array:
        """Elementwise: False where the state shows a blown-up integration."""
        return jnp.isfinite(self.voltage(state))


def replace_surrogate(neuron: Any, surrogate: Any) -> Any:
    """``neuron`` with its ``surrogate`` field set (for models that declare one)."""
    return eqx.tree_at(lambda n: n.surrogate, neuron, surrogate, is_leaf=lambda v: v is None)
