"""The spike-train replication task (study 001): one set of target trains, fed in and
reproduced; its figure is a raster of target and output trains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.network import AbstractReadout
from weakgrad.sim.network import Record
from weakgrad.tasks.base import AbstractTask

if TYPE_CHECKING:
    from weakgrad.config import TrainConfig

__all__ = ["SpikeTrainTask", "OutputSpikes"]


class OutputSpikes(AbstractReadout):
    """The last layer's spikes per step, ``(steps, n_out)`` of 0/1, read from what its
    neurons send (``Record(outputs=True)``): with a non-graded output layer that is the
    spike itself, and it carries the surrogate derivative a surrogate gradient sets.

    Why not :class:`~weakgrad.objectives.network.SpikeTrains` (``Trace.spikes``):
    ``HodgkinHuxley.step`` emits its ``spike`` without the surrogate (only the value sent
    on, when ``graded=False``, carries it), so a spike-train loss on ``Trace.spikes`` of HH
    neurons has an exactly zero surrogate gradient (issue 16, finding 6). The forward
    numbers are the same 0/1 trains."""

    record: ClassVar[Record] = Record(counts=False, mean_output=False, outputs=True)

    def __call__(self, trace: Any) -> Array:
        return trace.outputs[-1]


@eqx.filter_jit
def _loss(objective: Any, params: Any, key: Array) -> Array:
    return objective(params, key)


@eqx.filter_jit
def _output_spikes(objective: Any, params: Any, key: Array) -> Array:
    spikes, _ = objective.readout(params, key)  # (1, steps, n_out): one example
    return spikes[0]


@final
class SpikeTrainTask(AbstractTask):
    """Reproduce ``target`` (``(steps, n)`` 0/1 trains) with ``objective``, a spike-train
    objective fed those trains. No batches: every step trains on the whole run; validation
    is the loss itself (no accuracy)."""

    def __init__(self, objective: Any, target: Array, dt_ms: float):
        self.objective, self.target, self.dt = objective, target, dt_ms

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> SpikeTrainTask:
        from weakgrad.sim.network import Network
        from weakgrad.sim.neurons import HodgkinHuxley
        from weakgrad.tasks.spike_trains import (
            CrossCorrelation,
            VanRossum,
            read_nwb_units,
            spike_train_objective,
            synthetic_spike_trains,
        )

        t, tr = cfg.task, cfg.train
        k_data, k_net = jax.random.split(jax.random.key(tr.seed))
        if t.nwb_file is not None:
            target = jnp.asarray(
                read_nwb_units(t.nwb_file, dt_ms=t.dt_ms, duration_ms=t.duration_ms)
            )
        else:
            target = synthetic_spike_trains(
                k_data, n_cells=t.cells, duration_ms=t.duration_ms, dt_ms=t.dt_ms,
                rates_hz=t.rate_hz, correlation=t.correlation,
            )  # fmt: skip
        n = target.shape[1]
        net = Network.feedforward(
            (n, t.hidden, t.hidden, n), HodgkinHuxley(), key=k_net, scale=20.0, bias=5.0
        )
        # The output layer sends its spikes (graded=False) instead of graded release: nothing
        # reads what it sends, so the run is unchanged, but its spikes then carry a
        # surrogate derivative and the surrogate gradient is not identically zero (see
        # OutputSpikes).
        net = eqx.tree_at(lambda m: m.layers[-1].neuron, net, HodgkinHuxley(graded=False))
        loss = VanRossum(t.tau_ms) if t.loss == "van-rossum" else CrossCorrelation(t.tau_ms)
        objective = spike_train_objective(net, t.input_gain * target, target, loss, dt=t.dt_ms)
        objective = eqx.tree_at(lambda o: o.read, objective, OutputSpikes())
        return cls(objective, target, t.dt_ms)

    def initial_params(self) -> Any:
        return self.objective.params()

    def objective_at(self, step: int) -> Any:
        return self.objective

    def validate(self, params: Any, key: Array) -> tuple[float, float]:
        return float(_loss(self.objective, params, key)), float("nan")

    def score(self, params: Any, key: Array) -> dict[str, Any]:
        return {
            "final_loss": float(_loss(self.objective, params, key)),
            "target_spikes": int(np.sum(self.target)),
            "output_spikes": int(np.sum(_output_spikes(self.objective, params, key))),
        }

    def figures(self, params: Any, key: Array) -> dict[str, Any]:
        from weakgrad.plots import plot_raster

        spikes = np.asarray(_output_spikes(self.objective, params, key))
        fig = plot_raster(np.asarray(self.target), spikes, self.dt,
                          title="spike-train replication: target vs network")  # fmt: skip
        return {"raster.png": fig}
