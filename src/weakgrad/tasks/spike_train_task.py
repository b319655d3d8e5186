"""The spike-train replication task (study 001): one set of target trains, fed in and
reproduced; its figure is a raster of target and output trains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.tasks.base import AbstractTask

if TYPE_CHECKING:
    from weakgrad.config import TrainConfig

__all__ = ["SpikeTrainTask"]


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
        loss = VanRossum(t.tau_ms) if t.loss == "van-rossum" else CrossCorrelation(t.tau_ms)
        objective = spike_train_objective(net, t.input_gain * target, target, loss, dt=t.dt_ms)
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
