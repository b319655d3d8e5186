"""Two processes, one computation (JAX's multi-process runtime on the loopback interface):
the estimates, a 1-D landscape and three training steps equal those of one process.

The reference is one process with two CPU devices; the multi-process run is two processes
with one device each, so both shard over the same two-device mesh: the same padding, the
same per-device work, and an all-reduce of two partial sums (a + b, exact in either
order). Results are therefore compared bit for bit (float64, so a difference would be
real, not rounding). One launch of each kind serves every check (fresh JAX processes
compile everything; about 20 s on two cores), each process with a hard time limit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cli_helpers import SUITE_XLA_FLAGS

from weakgrad.distributed import ClusterSettings, cluster_settings
from weakgrad.errors import ConfigError

TIMEOUT_S = 240  # a guard against a hung run; about 20 s each on an idle 2-core machine

# Three steps of regression on a small sigmoid network (MNIST digits): the loop and its
# files are what is checked here; the spiking estimates are checked by SCRIPT below.
TRAIN = [
    "task.model=ann", "task.train_size=40", "train.steps=3", "train.batch_size=5",
    "train.eval_every=3", "train.eval_size=10", "estimator.samples=8", "estimator.sigma=0.05",
]  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    def lap(what):
        print(f"{what}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    out_path, nproc, pid, port, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        sys.argv[4], sys.argv[5]
    flags = {} if nproc == 1 else {"coordinator": f"127.0.0.1:{port}",
                                   "num_processes": nproc, "process_id": pid}
    cli = [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    fail = "--fail" in sys.argv
    if not fail:
        from weakgrad.cli import app
        sets = [a for s in json.loads(sys.argv[6]) for a in ("--set", s)]
        app(["train", *sets, "--out", run, *cli], standalone_mode=False)
        lap("train")

    import jax, jax.numpy as jnp, numpy as np
    import weakgrad as wg
    from weakgrad import distributed
    from weakgrad.analysis.landscape import LandscapeSettings, landscape_study
    from weakgrad.estimators import GaussianSmoothing, Regression
    from weakgrad.estimators.node_perturbation import NodePerturbation
    from weakgrad.objectives.losses import OneHotMSE
    from weakgrad.objectives.network import NetworkObjective
    from weakgrad.parallel import to_host

    with distributed.session(distributed.cluster_settings(**flags)) as main:
        if fail and pid == 1:
            raise RuntimeError("injected failure")  # process 0 must stop, naming process 1
        out = {"process": jax.process_index(), "processes": jax.process_count(),
               "devices": jax.device_count(), "main": main}
        net = wg.Network.feedforward((6, 5, 3), wg.HodgkinHuxley(noise_std=2.0),
                                     key=jax.random.key(0), scale=12.0, bias=6.0,
                                     dtype=jnp.float64)
        x = jnp.abs(jax.random.normal(jax.random.key(1), (3, 6), jnp.float64))
        obj = NetworkObjective(net, x, jnp.arange(3), OneHotMSE(high=0.3), dt=0.05, steps=40)
        ests = {"smoothing": GaussianSmoothing(sigma=0.1, samples=6),
                "regression": Regression(sigma=0.1, samples=5, common_noise=False),
                "node": NodePerturbation(sigma=0.5, samples=6)}
        # One compiled program for the three estimates.
        estimates = jax.jit(lambda p, k: {n: e.estimate(obj, p, (), key=k)[::2]
                                          for n, e in ests.items()})
        for name, (g, info) in estimates(obj.params(), jax.random.key(5)).items():
            out[name] = {"grad": [to_host(a).ravel().tolist() for a in jax.tree.leaves(g)],
                         "loss": float(to_host(info.loss))}
        lap("estimates")
        # Read through parallel.to_host (a sharded sweep chunk spans both processes).
        study = landscape_study(LandscapeSettings(points=6, w_min=1.0, w_max=3.0, trials=2,
                                                  noise=2.0, tau_ms=8.0, dt_ms=0.05))
        lap("landscape")
        out["landscape"] = {k: np.asarray(v).tolist() for k, v in
                            zip(["w", "current", "loss_mean", "loss_sem", "spikes_mean"],
                                study.curve.columns())}
        with open(out_path, "w") as f:
            json.dump(out, f)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp, nproc: int, devices: int, *extra: str) -> list:
    """Start ``nproc`` processes of SCRIPT with ``devices`` CPU devices each."""
    # Compiled as the suite compiles: both runs are compiled alike, so they still agree bit
    # for bit.
    flags = f"--xla_force_host_platform_device_count={devices} {SUITE_XLA_FLAGS}"
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1", XLA_FLAGS=flags)
    for k in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri"):
        env.pop(k, None)
    port, run = _free_port(), str(tmp / f"run{nproc}")
    procs = []
    for pid in range(nproc):
        out = tmp / f"out{nproc}_{pid}.json"
        args = [str(out), str(nproc), str(pid), str(port), run, json.dumps(TRAIN), *extra]
        procs.append((out, subprocess.Popen([sys.executable, "-c", SCRIPT, *args], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True)))  # fmt: skip
    return procs


def _wait(*launches: list) -> list[list[tuple[dict | None, str, int, str]]]:
    """Wait for every process, killing all that still run after TIMEOUT_S (or on any
    error); ``(result, stderr, status, stdout)`` per process, per launch."""
    results = []
    try:
        for procs in launches:
            results.append([])
            for out, proc in procs:
                stdout, err = proc.communicate(timeout=TIMEOUT_S)
                result = json.loads(out.read_text()) if out.exists() else None
                results[-1].append((result, err, proc.returncode, stdout))
    finally:
        for procs in launches:
            for _, proc in procs:
                proc.kill()
    return results


def _checkpoint(folder) -> dict[str, np.ndarray]:
    with np.load(folder / "checkpoint.npz") as d:
        return {k: d[k] for k in d.files if k != "seconds"}  # wall time differs, of course


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    # All three processes at once: each compiles on its own, so they overlap.
    one, two = _wait(_start(tmp, 1, 2), _start(tmp, 2, 1))
    return tmp, one, two


def test_two_processes_equal_one(runs):
    tmp, (one,), two = runs
    for _, err, status, _ in (one, *two):
        assert status == 0, err[-3000:]
    ref = one[0]
    assert ref["devices"] == 2 and ref["processes"] == 1
    for i, (result, *_) in enumerate(two):
        assert result["process"] == i and result["processes"] == 2 and result["devices"] == 2
        assert result["main"] == (i == 0)
        for name in ["smoothing", "regression", "node"]:
            a, b = ref[name], result[name]
            assert np.isfinite(a["loss"]) and np.linalg.norm(np.concatenate(a["grad"])) > 0
            assert b["loss"] == a["loss"], name  # bit for bit
            np.testing.assert_array_equal(np.concatenate(b["grad"]), np.concatenate(a["grad"]))


def test_two_process_landscape_equals_one_process(runs):
    _, (one,), two = runs
    ref = one[0]["landscape"]
    assert np.ptp(ref["loss_mean"]) > 0  # a landscape, not a constant
    for result, *_ in two:
        for column, values in ref.items():
            np.testing.assert_array_equal(result["landscape"][column], values, err_msg=column)


def test_two_process_training_writes_once_and_equals_one_process(runs):
    tmp, (one,), two = runs
    assert all(status == 0 for _, _, status, _ in (one, *two))
    a, b = _checkpoint(tmp / "run1"), _checkpoint(tmp / "run2")
    assert a.keys() == b.keys() and int(a["step"]) == 3
    for k in a:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    # Process 0 alone wrote the run folder (one lock, one metrics file of 3 rows).
    rows = (tmp / "run2" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and (tmp / "run2" / "summary.json").exists()
    assert "wrote" in two[0][3] and "wrote" not in two[1][3]  # process 1 prints nothing


def test_a_failing_process_stops_the_other_naming_it(tmp_path):
    [(_, err0, status0, _), (_, err1, status1, _)] = _wait(_start(tmp_path, 2, 1, "--fail"))[0]
    assert status1 == 1 and "RuntimeError: injected failure" in err1, err1[-3000:]
    assert status0 == 1, err0[-3000:]
    assert "stopping process 0 of 2: process 1 of 2 failed: RuntimeError: injected " in err0


def test_cluster_settings_from_flags_and_environment():
    plain = cluster_settings(env={})
    assert not plain.active
    assert not cluster_settings(num_processes=1, env={}).active  # one process: a plain run
    s = cluster_settings("127.0.0.1:1234", 2, 1, env={})
    assert s == ClusterSettings("127.0.0.1:1234", 2, 1, "flags") and s.active
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:99", "JAX_NUM_PROCESSES": "4",
           "JAX_PROCESS_ID": "3"}  # fmt: skip
    assert cluster_settings(env=env) == ClusterSettings("10.0.0.1:99", 4, 3,
                                                        "JAX_COORDINATOR_ADDRESS")  # fmt: skip
    slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0"}  # fmt: skip
    assert cluster_settings(env={**slurm, "SLURM_NTASKS": "2"}).detected == "slurm"
    assert not cluster_settings(env={**slurm, "SLURM_NTASKS": "1"}).active
    ompi = {"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "3"}
    assert cluster_settings(env=ompi).detected == "openmpi"
    assert not cluster_settings(env={"KUBERNETES_SERVICE_HOST": "k"}).active  # any pod
    k8s = {"KUBERNETES_SERVICE_HOST": "k", "JOB_COMPLETION_INDEX": "0"}
    assert cluster_settings(env=k8s).detected == "kubernetes"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("127.0.0.1:1", None, None), "without --num-processes, --process-id"),
        ((None, 2, None), "without --coordinator, --process-id"),
        (("nohost", 2, 0), "--coordinator must be HOST:PORT"),
        (("h:70000", 2, 0), "--coordinator must be HOST:PORT"),
        (("h:1", 0, 0), "--num-processes must be >= 1"),
        (("h:1", 2, -1), "--process-id must be >= 0"),
        (("h:1", 2, 2), "--process-id must be below --num-processes"),
    ],
)
def test_bad_flags_name_the_flag(args, needle):
    with pytest.raises(ConfigError, match=needle):
        cluster_settings(*args, env={})
    with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES must be an integer"):
        cluster_settings(env={"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two"})


@pytest.mark.parametrize("command", ["landscape", "gradcheck", "descend", "train"])
def test_every_heavy_command_takes_the_flags_and_names_a_missing_one(command, tmp_path):
    from cli_helpers import run_cli

    code, out, err = run_cli(command, "--out", tmp_path / "run", "--coordinator", "h:1")
    assert code == 2, err
    assert "--coordinator given without --num-processes, --process-id" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written
