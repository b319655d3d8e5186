"""The population axis of an estimate is split across devices; the result must equal the
single-device one for the same key (4 simulated CPU devices, in a subprocess because the
device count is fixed when JAX starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
from cli_helpers import SUITE_XLA_FLAGS

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import weakgrad as wg
    from weakgrad.estimators import GaussianSmoothing, Regression, CentralDifference
    from weakgrad.estimators.node_perturbation import NodePerturbation
    from weakgrad.objectives.losses import OneHotMSE
    from weakgrad.objectives.network import NetworkObjective

    net = wg.Network.feedforward((6, 5, 3), wg.HodgkinHuxley(noise_std=2.0),
                                 key=jax.random.key(0), scale=12.0, bias=6.0,
                                 dtype=jnp.float64)
    x = jnp.abs(jax.random.normal(jax.random.key(1), (3, 6), jnp.float64))
    # 100 steps (5 ms): an equality check needs spikes and noise, not a long run.
    obj = NetworkObjective(net, x, jnp.arange(3), OneHotMSE(high=0.3), dt=0.05, steps=100)
    p = obj.params()
    out = {"devices": jax.device_count()}
    pop = jax.tree.map(lambda a: jnp.stack([a] * 8), p)
    losses = jax.jit(lambda q, k: obj.population(q, k))(pop, jax.random.split(jax.random.key(0), 8))
    out["population_devices"] = len(losses.sharding.device_set)
    for name, est in [
        ("smoothing", GaussianSmoothing(sigma=0.1, samples=10)),  # 10: not a multiple of 4
        ("regression", Regression(sigma=0.1, samples=7, common_noise=False)),
        ("fd", CentralDifference(step=1e-2, chunk=8)),
        ("node", NodePerturbation(sigma=0.5, samples=6)),
        ("node-pairs", NodePerturbation(sigma=(0.5, 0.2), samples=6, hold=None, antithetic=True)),
    ]:
        g, _, info = jax.jit(lambda p, k: est.estimate(obj, p, (), key=k))(p, jax.random.key(5))
        leaves = [np.asarray(a).ravel().tolist() for a in jax.tree_util.tree_leaves(g)]
        out[name] = {"grad": leaves, "loss": float(info.loss)}
    print(json.dumps(out))
    """
)


def _start(devices: int) -> subprocess.Popen:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_ENABLE_X64"] = "1"  # float64: differences would be real, not rounding
    # Compiled as the suite compiles: both processes are compiled alike.
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} {SUITE_XLA_FLAGS}"
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _result(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_sharded_estimates_equal_single_device():
    # Both processes at once: each compiles on its own, so they overlap on two cores.
    procs = _start(1), _start(4)
    one, four = _result(procs[0]), _result(procs[1])
    assert one["devices"] == 1 and four["devices"] == 4
    assert four["population_devices"] == 4  # the population really is split
    for name in ["smoothing", "regression", "fd", "node", "node-pairs"]:
        a, b = one[name], four[name]
        assert np.isfinite(a["loss"])
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-12)
        ga, gb = np.concatenate(a["grad"]), np.concatenate(b["grad"])
        assert np.linalg.norm(ga) > 0, name
        # Same samples, same noise: only summation order may differ.
        rel = np.linalg.norm(gb - ga) / np.linalg.norm(ga)
        assert rel < 1e-9, (name, rel)


def test_population_is_split_across_devices_when_there_are_several():
    # In this (single-device) process sharding must be a no-op that keeps values.
    from weakgrad.objectives.base import Objective

    obj = Objective(lambda p, k: p.sum())
    thetas = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    keys = jax.random.split(jax.random.key(0), 6)
    np.testing.assert_allclose(np.asarray(obj.population(thetas, keys)), thetas.sum(1))
