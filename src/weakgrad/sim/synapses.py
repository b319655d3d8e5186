"""Current synapses: turn a layer's summed presynaptic drive into its input current.

The drive of a layer at step t is ``x @ W + b (+ r @ R) (+ injected)``, in the current units
of the postsynaptic neuron (uA/cm^2 for Hodgkin-Huxley).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jax import Array

__all__ = ["AbstractSynapse", "Instantaneous", "Exponential", "all_synapses"]


class AbstractSynapse(eqx.Module):
    @abc.abstractmethod
    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Any: ...

    @abc.abstractmethod
    def step(self, state: Any, drive: Array, dt: float | Array) -> tuple[Any, Array]:
        """Advance by ``dt`` (ms); return the new state and the current for this step."""


class Instantaneous(AbstractSynapse):
    """The current is the drive itself."""

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Any:
        return ()

    def step(self, state: Any, drive: Array, dt: float | Array) -> tuple[Any, Array]:
        return state, drive


class Exponential(AbstractSynapse):
    """First-order low-pass: ``tau dI/dt = drive - I`` (unit DC gain, so weights keep their
    meaning across ``tau``), integrated exactly for a drive held over the step.

    Attributes:
        tau: decay time constant in ms.
    """

    tau: float = 5.0

    def __check_init__(self):
        if not self.tau > 0:
            raise ValueError(f"Exponential.tau must be > 0 ms, got {self.tau}; try tau=5.0.")

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jnp.zeros(shape, dtype)

    def step(self, state: Array, drive: Array, dt: float | Array) -> tuple[Array, Array]:
        current = drive + (state - drive) * jnp.exp(-dt / self.tau)
        return current, current


def all_synapses() -> list[AbstractSynapse]:
    """One instance of every synapse model (drives the contract tests)."""
    return [Instantaneous(), Exponential(), Exponential(tau=0.5)]
