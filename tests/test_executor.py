"""HostObjective over a concurrent.futures.Executor: a process pool and a Dask LocalCluster
(scheduler and workers on 127.0.0.1) give the losses, and an estimator's gradient, of the
serial evaluation, bit for bit (each row's loss depends on its row and seed alone).

The objective is defined here at module level with NumPy alone, so the worker processes
that unpickle it import no JAX.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

CENTER = np.array([0.5, -1.0, 2.0])


def noisy_quadratic(thetas: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """A stand-in for an external simulator: a quadratic bowl plus seeded noise per row."""
    noise = np.array([np.random.default_rng(int(s)).normal() for s in seeds])
    return np.sum((thetas - CENTER) ** 2, axis=1) + 0.1 * noise


def wrong_shape(thetas: np.ndarray) -> np.ndarray:
    return np.zeros((thetas.shape[0], 2))


def _population(executor: Executor | None, chunks: int | None = None):
    import jax
    import jax.numpy as jnp

    from weakgrad.estimators import GaussianSmoothing
    from weakgrad.objectives.base import HostObjective

    obj = HostObjective(noisy_quadratic, takes_seed=True, executor=executor, chunks=chunks)
    thetas = jax.random.normal(jax.random.key(0), (7, 3))
    losses = np.asarray(obj.population(thetas, jax.random.split(jax.random.key(1), 7)))
    est = GaussianSmoothing(sigma=0.1, samples=8)
    grad, _, info = jax.jit(lambda p, k: est.estimate(obj, p, (), key=k))(
        jnp.zeros(3), jax.random.key(2)
    )
    return losses, np.asarray(grad), float(info.loss)


@pytest.fixture(scope="module")
def serial():
    return _population(None)


def test_process_pool_equals_serial(serial):
    losses, grad, loss = serial
    # Spawned workers: forking a process that runs JAX's threads can deadlock.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        for chunks in (None, 3):  # one row per task; 3 blocks of rows (7 rows: 3, 2, 2)
            got = _population(pool, chunks)
            np.testing.assert_array_equal(got[0], losses)
            np.testing.assert_array_equal(got[1], grad)
            assert got[2] == loss
    # The serial losses are the objective's, row by row (the reference is not circular).
    np.testing.assert_array_less(0.0, np.abs(grad))
    assert np.all(np.isfinite(losses)) and np.ptp(losses) > 0


def test_dask_local_cluster_equals_serial(serial):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        got = _population(client.get_executor(), 4)
    np.testing.assert_array_equal(got[0], serial[0])
    np.testing.assert_array_equal(got[1], serial[1])
    assert got[2] == serial[2]


def test_executor_errors_name_the_field():
    import jax

    from weakgrad.objectives.base import HostObjective

    with pytest.raises(TypeError, match="HostObjective.executor must be a concurrent"):
        HostObjective(noisy_quadratic, takes_seed=True, executor=object())
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="HostObjective.chunks must be a positive"):
            HostObjective(noisy_quadratic, takes_seed=True, chunks=bad)
    # A worker's error reaches the caller with the serial message (here: per block of rows).
    with ThreadPoolExecutor(2) as pool:
        obj = HostObjective(wrong_shape, executor=pool, chunks=2)
        with pytest.raises(ValueError, match=r"returned shape \(3, 2\) for 3 parameter vectors"):
            obj.population(np.zeros((5, 3), np.float32), jax.random.split(jax.random.key(0), 5))
