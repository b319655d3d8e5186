"""One process vs two: JAX's multi-process runtime (weakgrad.distributed) on one machine.

Workloads (what scales: independent simulations):

- landscape: the single-neuron turn-off sweep of ``weakgrad landscape`` (HH neuron,
  I = w * 34.6 uA/cm^2 plus a 5 uA/cm^2 per-step noise current), 1000 weights x 1 trial,
  tau = 1 s at dt = 0.01 ms: 10^8 neuron-steps, through
  ``weakgrad.analysis.landscape.landscape_study`` (chunks of 128 points, each sharded over
  every device of every process);
- landscape-1000: the same sweep through ``sweep_1d`` in one chunk of 1000 points. A
  simulation's time steps are sequential, and each step has a fixed cost besides its
  per-neuron work: 64 neurons per device (a 128-point chunk on two devices) leave that
  cost dominant, 500 per device do not;
- node: one node-perturbation estimate on the HH MNIST network of
  ``configs/mnist-hh-long.toml`` (784-100-10, 100 ms at dt 0.1 ms, batch 40, 12 perturbed
  runs per digit, both layers at once: the config's estimator without alternation), the
  population sharded likewise.

Layouts: 1 process x 1 device (one core), 1 process x 2 devices (what ``weakgrad`` does on
its own: one XLA CPU device per core, threads of one process), and 2 processes x 1 device
(the multi-process runtime over the loopback interface: what a second machine would add,
here on the second core). Each layout runs in fresh processes; times are wall clock of
process 0, first call (with compilation) and warm (best of the repeats).

    python benchmarks/distributed.py           # both workloads (a few minutes on 2 cores)
    python benchmarks/distributed.py --quick   # 10^7 neuron-steps, 10 ms node estimate

Writes benchmarks/results/distributed.json (distributed-quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAYOUTS = (("1 process x 1 device", 1, 1), ("1 process x 2 devices", 1, 2),
           ("2 processes x 1 device", 2, 1))  # fmt: skip
REPEATS = 3


def _timed(fn, repeats: int) -> tuple[object, float, float]:
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        warm.append(time.perf_counter() - t0)
    return out, first, min(warm)


def _landscape(quick: bool, chunk: int | None) -> dict:
    import jax
    import numpy as np

    import weakgrad as wg
    from weakgrad.analysis.landscape import LandscapeSettings, landscape_study, sweep_1d
    from weakgrad.tasks import SingleNeuronTurnOff

    tau_ms = 100.0 if quick else 1000.0
    settings = LandscapeSettings(points=1000, trials=1, noise=5.0, tau_ms=tau_ms, dt_ms=0.01)
    if chunk is None:  # as `weakgrad landscape` runs it
        run = lambda: landscape_study(settings).curve  # noqa: E731
    else:
        task = SingleNeuronTurnOff(wg.HodgkinHuxley(noise_std=5.0), i0=34.6, tau_ms=tau_ms)
        w = np.linspace(0.0, 3.0, 1000)
        run = lambda: sweep_1d(task.evaluate_trials, w, trials=1,  # noqa: E731
                               key=jax.random.key(0), chunk=chunk)  # fmt: skip
    curve, first, warm = _timed(run, REPEATS)
    return {"first_s": first, "warm_s": warm, "neuron_steps": 1000 * round(tau_ms / 0.01),
            "check": float(np.sum(curve.loss_mean))}  # fmt: skip


def work_landscape(quick: bool) -> dict:
    """``weakgrad landscape``'s sweep: chunks of 128 points."""
    return _landscape(quick, None)


def work_landscape_wide(quick: bool) -> dict:
    """The same sweep in one chunk of 1000 points (500 per device on two devices)."""
    return _landscape(quick, 1000)


def work_node(quick: bool) -> dict:
    import jax
    import numpy as np

    from weakgrad.config import load_config
    from weakgrad.parallel import to_host
    from weakgrad.training.loop import build

    # Both layers at once, 12 perturbed runs per digit (the config's hidden-layer count).
    node = 'name="node", samples=12, sigma=1.0, layer_sigma=[6.0, 1.0], hold="run"'
    sets = [f"estimator={{{node}, alternate=false}}"]
    if quick:
        sets += ["task.duration_ms=10.0"]
    cfg = load_config(ROOT / "configs" / "mnist-hh-long.toml", sets)
    task, est, _ = build(cfg)
    params = task.initial_params()
    obj = task.objective_at(0)
    fn = jax.jit(lambda p, k: est.estimate(obj, p, est.init(p), key=k)[::2])
    (g, info), first, warm = _timed(lambda: fn(params, jax.random.key(0)), REPEATS)
    norm = float(np.sqrt(sum(np.sum(to_host(a) ** 2) for a in jax.tree.leaves(g))))
    return {"first_s": first, "warm_s": warm, "evals": int(info.evals), "check": norm}


WORK = {"landscape": work_landscape, "landscape-1000": work_landscape_wide, "node": work_node}


def worker(args) -> None:
    from weakgrad import distributed

    flags = {}
    if args.nproc > 1:
        flags = {"coordinator": f"127.0.0.1:{args.port}", "num_processes": args.nproc,
                 "process_id": args.pid}  # fmt: skip
    with distributed.session(distributed.cluster_settings(**flags, env={})) as main:
        import jax

        result = WORK[args.worker](args.quick)
        result["devices"] = jax.device_count()
        if main:
            print(json.dumps(result), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(work: str, nproc: int, devices: int, quick: bool) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")  # fmt: skip
    port = _free_port()
    procs = []
    for pid in range(nproc):
        cmd = [sys.executable, __file__, "--worker", work, "--nproc", str(nproc), "--pid",
               str(pid), "--port", str(port)] + (["--quick"] if quick else [])  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    try:
        outs = [p.communicate(timeout=1800) for p in procs]
    finally:
        for p in procs:
            p.kill()
    if any(p.returncode for p in procs):
        tail = next(e for (_, e), p in zip(outs, procs, strict=True) if p.returncode)
        return {"error": (tail.strip().splitlines() or ["?"])[-1]}
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", choices=sorted(WORK))
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    results: dict[str, dict] = {}
    for work in WORK:
        results[work] = {}
        for label, nproc, devices in LAYOUTS:
            r = launch(work, nproc, devices, args.quick)
            results[work][label] = r
            if "error" in r:
                print(f"  {work:9s} {label:24s} failed: {r['error']}", flush=True)
            else:
                print(f"  {work:9s} {label:24s} first {r['first_s']:7.2f} s  warm "
                      f"{r['warm_s']:7.2f} s  check {r['check']:.6g}", flush=True)  # fmt: skip
    print("\n| workload | layout | first s (incl. compile) | warm s | speedup vs 1 x 1 (warm) |")
    print("|---|---|---|---|---|")
    speedups = {}
    for work, rows in results.items():
        base = rows[LAYOUTS[0][0]].get("warm_s")
        for label, *_ in LAYOUTS:
            r = rows[label]
            if "warm_s" not in r:
                continue
            sp = base / r["warm_s"] if base else float("nan")
            speedups[f"{work}: {label}"] = sp
            print(f"| {work} | {label} | {r['first_s']:.2f} | {r['warm_s']:.2f} | {sp:.2f}x |")
    info = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "quick": args.quick, "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("distributed-quick.json" if args.quick else "distributed.json")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"info": info, "results": results, "speedup_warm": speedups},
                              indent=2) + "\n")  # fmt: skip
    os.replace(tmp, path)
    print(f"wrote {path}")
    two = {w: speedups.get(f"{w}: {LAYOUTS[2][0]}", float("nan")) for w in WORK}
    print(" ".join(f"{w.replace('-', '_')}_2proc_speedup={v:.2f}" for w, v in two.items()))


if __name__ == "__main__":
    main()
