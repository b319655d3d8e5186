"""EventProp: the exact gradient of a spiking network's loss by the adjoint method
(Wunderlich & Pehle 2021, "Event-based backpropagation can compute exact gradients for
spiking neural networks", Sci. Rep. 11:12829).

One event-driven forward simulation per example (spike times to the float type's
precision, :mod:`weakgrad.sim.event_lif`), then the adjoint system run backward from the
end of the window, in closed form between events and with its jumps at spikes; the
gradient of a weight is the sum, over its presynaptic neuron's spikes, of the postsynaptic
``-tau_syn lambda_I`` (:func:`weakgrad.sim.event_lif.adjoint`).

The gradient is exact where it exists: everywhere except on the null set of weights where a
potential touches threshold without crossing it (a spike appears or disappears there and
the loss jumps). Where an example's spikes exceed the network's ``max_events`` (spikes lost)
the estimate is NaN in every component and so is the loss: never a silently wrong value
(raise ``max_events``). Output neurons that never fire carry no first-spike-time gradient.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.estimators._base import AbstractEstimator, EstimatorInfo
from weakgrad.objectives.base import AbstractObjective
from weakgrad.objectives.events import EventObjective
from weakgrad.sim.event_lif import adjoint

__all__ = ["EventProp"]


class EventProp(AbstractEstimator):
    """Exact gradients of an :class:`~weakgrad.objectives.events.EventObjective` (one forward
    and one adjoint pass per example; no samples, no surrogate)."""

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        if not isinstance(objective, EventObjective):
            raise TypeError(
                "EventProp needs an EventObjective (weakgrad.objectives.events: an "
                "EventNetwork of LIF neurons, input spike times, a FirstSpikeTimes or "
                f"MaxVoltage readout), got {type(objective).__name__}; for other objectives "
                "use Autodiff, SurrogateGradient or a sampling estimator."
            )
        if objective.surrogate is not None:
            raise TypeError(
                "EventProp differentiates the exact event-driven network; this EventObjective "
                "carries a surrogate (its grid twin). Pass the objective without "
                "with_surrogate(...), or use SurrogateGradient."
            )
        del key  # deterministic
        net, b = objective.net, objective.batch_size
        traces = objective.traces(params)
        readout = objective.read(traces)
        losses, g = jax.vmap(jax.value_and_grad(objective.loss))(readout, objective.targets)
        g_first, g_vmax = objective.read.adjoint_sources(g / b)
        per_example = jax.vmap(lambda tr, gf, gv: adjoint(net, params, tr, gf, gv))(
            traces, g_first, g_vmax
        )
        lost = jnp.any(traces.overflow)
        grads = jax.tree.map(
            lambda x: jnp.where(lost, jnp.asarray(jnp.nan, x.dtype), x.sum(0)), per_example
        )
        loss = jnp.mean(jnp.where(traces.overflow, jnp.nan, losses))
        return grads, state, EstimatorInfo(jnp.asarray(1, jnp.int32), loss)
