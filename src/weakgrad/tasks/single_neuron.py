"""The study's simplest case: turn a single Hodgkin-Huxley neuron off.

One HH neuron is driven by a constant current ``w * i0``; the loss is its mean output over
``tau`` (the time average of the graded release it would send to synapses), which gradient
descent on ``w`` should drive to zero. With the default ``i0`` repetitive firing stops near
``w = 1.8``: above about 62.3 uA/cm^2 the oscillation peaks no longer reach the 0 mV
threshold and only the onset spikes count (true depolarisation block is near 154).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.sim.network import Network, simulate
from weakgrad.sim.neurons import HodgkinHuxley
from weakgrad.sim.random import stream_keys

__all__ = ["SingleNeuronTurnOff"]


class SingleNeuronTurnOff(eqx.Module):
    """Single-neuron turn-off task.

    Attributes:
        neuron: the HH model (its ``noise_std`` makes trials differ).
        i0: input current per unit weight, uA/cm^2.
        tau_ms: simulated duration, ms.
        dt_ms: time step, ms.
    """

    neuron: HodgkinHuxley = HodgkinHuxley()
    i0: float = eqx.field(static=True, default=34.6)
    tau_ms: float = eqx.field(static=True, default=1000.0)
    dt_ms: float = eqx.field(static=True, default=0.01)

    def __check_init__(self):
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms}; try 0.01.")
        if not self.tau_ms > 0:
            raise ValueError(f"tau_ms must be > 0, got {self.tau_ms}; try 1000.")
        if self.tau_ms < self.dt_ms:
            raise ValueError(
                f"tau_ms={self.tau_ms} is shorter than one step dt_ms={self.dt_ms}; "
                "make tau_ms a multiple of dt_ms."
            )

    @property
    def steps(self) -> int:
        return max(1, round(self.tau_ms / self.dt_ms))

    def network(self, w: Array | float) -> Network:
        return Network.independent(1, self.neuron, weight=w)

    def current(self, w: Array | float) -> Array:
        """Input current (uA/cm^2) for weight ``w``."""
        return jnp.asarray(w) * self.i0

    def evaluate(self, w: Array | float, key: Array) -> tuple[Array, Array]:
        """One trial: ``(loss, spike count)`` for weight ``w``; the loss is NaN if the
        simulation blew up (checked on the host by the caller, so that this also runs
        sharded over several devices)."""
        w = jnp.asarray(w)
        net = self.network(w.astype(jnp.result_type(w, float)))
        trace = simulate(
            net,
            jnp.full((1,), self.i0, net.layers[0].weight.dtype),
            dt=self.dt_ms,
            steps=self.steps,
            key=key,
            check=False,
        )
        loss = jnp.where(trace.valid, trace.mean_output[0][0], jnp.nan)
        return loss, trace.counts[0][0]

    def evaluate_trials(self, w: Array, keys: Array) -> tuple[Array, Array]:
        """Vectorised over weights ``w`` (W,) and trial keys (N,): arrays of shape (W, N),
        equal to :meth:`evaluate` at each pair.

        All ``W x N`` neurons are simulated as one network (about twice as fast as a
        ``vmap`` of single-neuron simulations on CPU), each with the noise stream that
        :meth:`evaluate` would give it, so trial ``j`` sees the same noise at every ``w``
        (common random numbers). A neuron whose state blew up gets a NaN loss.
        """
        w = jnp.asarray(w)
        n_w, n_t = w.shape[0], keys.shape[0]
        dtype = jnp.result_type(w, float)
        words = jax.vmap(lambda k: stream_keys(jax.random.fold_in(k, 0), (1,)))(keys)  # (N,2,1)
        words = jnp.tile(jnp.moveaxis(words[:, :, 0], 0, 1), (1, n_w))  # (2, W*N), trial-minor
        net = Network.independent(n_w * n_t, self.neuron, weight=jnp.repeat(w, n_t).astype(dtype))
        trace = simulate(
            net,
            jnp.full((1,), self.i0, dtype),
            dt=self.dt_ms,
            steps=self.steps,
            streams=(words,) if self.neuron.stochastic else None,
            check=False,
        )
        mean = trace.mean_output[0]
        ok = self.neuron.is_valid(trace.final_state[0]) & jnp.isfinite(mean)
        loss = jnp.where(ok, mean, jnp.nan)
        return loss.reshape(n_w, n_t), trace.counts[0].reshape(n_w, n_t)
