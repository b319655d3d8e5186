"""The complete graph (study 000, "Training Complete Graph"): ``n`` Hodgkin-Huxley neurons
connected all-to-all including self-connections, no input but a bias current, and the
turn-off loss (mean output of all neurons over ``tau``).

The parameters are the ``n x n`` recurrent weights (row = presynaptic), in uA/cm^2 per
unit of presynaptic graded release. For one neuron this is a single self-coupled neuron,
whose loss curve splits into several bands under a fine zoom (a "multi-function").
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.network import Network, simulate
from weakgrad.sim.neurons import HodgkinHuxley
from weakgrad.sim.synapses import AbstractSynapse, Exponential

__all__ = ["CompleteGraphTurnOff"]


class CompleteGraphTurnOff(eqx.Module):
    """Turn off a complete graph of HH neurons.

    Attributes:
        n: number of neurons.
        neuron: the HH model (``noise_std`` makes trials differ).
        bias: constant current into every neuron, uA/cm^2 (10 makes a lone neuron fire).
        synapse: how presynaptic release becomes current; the default exponential synapse
            (5 ms) lets a spike's feedback outlast the spike itself, so the coupling shapes
            the next spike (an instantaneous synapse only acts during the spike).
        tau_ms, dt_ms: simulated duration and time step, ms.
    """

    n: int = eqx.field(static=True, default=1)
    neuron: HodgkinHuxley = HodgkinHuxley()
    bias: float = eqx.field(static=True, default=10.0)
    synapse: AbstractSynapse = Exponential(5.0)
    tau_ms: float = eqx.field(static=True, default=1000.0)
    dt_ms: float = eqx.field(static=True, default=0.01)

    def __check_init__(self):
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"n (neurons) must be an int >= 1, got {self.n!r}.")
        if not self.dt_ms > 0 or not self.tau_ms >= self.dt_ms:
            raise ValueError(
                f"need dt_ms > 0 and tau_ms >= dt_ms, got dt_ms={self.dt_ms}, tau_ms={self.tau_ms}."
            )

    @property
    def steps(self) -> int:
        return max(1, round(self.tau_ms / self.dt_ms))

    def uniform(self, w: Array | float) -> Array:
        """Recurrent weights all equal to ``w``."""
        return jnp.full((self.n, self.n), w, jnp.result_type(w, float))

    def evaluate(self, recurrent: Array, key: Array) -> tuple[Array, Array]:
        """One trial at recurrent weights ``(n, n)``: ``(loss, mean spike count per neuron)``;
        the loss is NaN if the simulation blew up."""
        recurrent = jnp.asarray(recurrent)
        net = Network.complete_graph(
            self.n, self.neuron, recurrent=recurrent, bias=self.bias, synapse=self.synapse
        )
        dtype = net.layers[0].weight.dtype
        trace = simulate(
            net, jnp.zeros((1,), dtype), dt=self.dt_ms, steps=self.steps, key=key, check=False
        )
        loss = jnp.where(trace.valid, trace.mean_output[0].mean(), jnp.nan)
        return loss, trace.counts[0].mean()

    def evaluate_trials(self, recurrent: Array, keys: Array) -> tuple[Array, Array]:
        """Vectorised over a batch of weight matrices ``(W, n, n)`` and keys ``(N,)``."""
        per_trial = jax.vmap(self.evaluate, in_axes=(None, 0))
        return jax.vmap(per_trial, in_axes=(0, None))(recurrent, keys)
