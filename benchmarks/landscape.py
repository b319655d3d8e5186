"""Landscape sweeps: weakgrad vs Brian2 C++ standalone on the single-neuron sweep, and the
2-D complete-graph sweep.

1-D: 1000 weights x 10 noisy trials of the single-neuron turn-off task (I = w * 34.6
uA/cm^2 plus a 5 uA/cm^2 per-step noise current), tau = 1 s at dt = 0.01 ms: 10^9
neuron-steps. weakgrad runs it through ``weakgrad.analysis.landscape.sweep_1d`` (what ``weakgrad
landscape`` runs), one JAX device per core; Brian2 simulates the same 10,000 neurons as one
C++ standalone network (OpenMP threads = cores). Both times are wall clock including
compilation / code generation, and again warm.

2-D: ``weakgrad landscape --task complete-graph --neurons 10 --2d``: 51 x 51 points of a
complete graph of 10 HH neurons, tau = 100 ms (weakgrad only).

    python benchmarks/landscape.py           # full (~3 min with Brian2)
    python benchmarks/landscape.py --quick   # 10^7 steps, < 1 minute; last line is
                                             # machine-readable
Each engine runs in its own subprocess. Brian2 is optional (``pip install -e '.[peers]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
I0, NOISE = 34.6, 5.0


def _sizes(args):
    if args.quick:
        return {"points": 100, "trials": 10, "tau_ms": 100.0, "grid": 11, "tau2d_ms": 20.0}
    return {"points": 1000, "trials": 10, "tau_ms": 1000.0, "grid": 51, "tau2d_ms": 100.0}


def run_weakgrad_1d(args) -> dict:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
    import jax
    import numpy as np

    import weakgrad as wg
    from weakgrad.analysis.landscape import sweep_1d
    from weakgrad.tasks import SingleNeuronTurnOff

    s = _sizes(args)
    task = SingleNeuronTurnOff(wg.HodgkinHuxley(noise_std=NOISE), i0=I0, tau_ms=s["tau_ms"])
    w = np.linspace(0.0, 3.0, s["points"])
    chunk = max(jax.device_count(), 128)

    def run():
        return sweep_1d(
            task.evaluate_trials, w, trials=s["trials"], key=jax.random.key(0), chunk=chunk
        )

    t0 = time.perf_counter()
    r = run()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run()
    warm = time.perf_counter() - t0
    steps = s["points"] * s["trials"] * round(s["tau_ms"] / 0.01)
    return {"first_s": first, "warm_s": warm, "neuron_steps": steps, "devices": jax.device_count(),
            "spikes_total": float(r.spikes_mean.sum() * s["trials"])}  # fmt: skip


def run_brian2_1d(args) -> dict:
    import brian2 as b2
    import numpy as np
    from brian2 import cm2, ms, uA
    from peers import brian2_hh_group

    s = _sizes(args)
    build = tempfile.mkdtemp(prefix="wg_bench_land_")
    b2.set_device("cpp_standalone", build_on_run=False, directory=build)
    b2.prefs.devices.cpp_standalone.openmp_threads = os.cpu_count() or 1
    b2.defaultclock.dt = 0.01 * ms
    n = s["points"] * s["trials"]
    g = brian2_hh_group(
        n,
        """
        I = I_dc + I_noise : amp/meter**2
        I_dc : amp/meter**2 (constant)
        I_noise : amp/meter**2
        """,
        {"sigma": NOISE * uA / cm2},
    )
    g.I_dc = np.repeat(np.linspace(0.0, 3.0, s["points"]) * I0, s["trials"]) * uA / cm2
    g.run_regularly("I_noise = sigma * randn()", when="before_groups", name="noise")
    mon = b2.SpikeMonitor(g, name="spikes")
    b2.run(s["tau_ms"] * ms)
    t0 = time.perf_counter()
    b2.device.build(directory=build, compile=True, run=True, debug=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    b2.device.run(directory=build, with_output=False, run_args=[])
    warm = time.perf_counter() - t0
    return {"first_s": first, "warm_s": warm, "neuron_steps": n * round(s["tau_ms"] / 0.01),
            "threads": b2.prefs.devices.cpp_standalone.openmp_threads,
            "spikes_total": float(mon.num_spikes)}  # fmt: skip


def run_weakgrad_2d(args) -> dict:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
    import jax
    import numpy as np

    from weakgrad.analysis.landscape import random_direction, sweep_2d
    from weakgrad.tasks import CompleteGraphTurnOff

    s = _sizes(args)
    task = CompleteGraphTurnOff(10, bias=10.0, tau_ms=s["tau2d_ms"])
    base = task.uniform(5.0)
    k1, k2 = jax.random.split(jax.random.key(1))
    d1, d2 = random_direction(k1, base), random_direction(k2, base)
    grid = np.linspace(-1.0, 1.0, s["grid"])

    def run():
        return sweep_2d(task.evaluate_trials, base, d1, d2, grid, grid, trials=1,
                        key=jax.random.key(0), chunk=max(jax.device_count(), 256))  # fmt: skip

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run()
    warm = time.perf_counter() - t0
    steps = s["grid"] ** 2 * 10 * round(s["tau2d_ms"] / 0.01)
    return {"first_s": first, "warm_s": warm, "neuron_steps": steps, "points": s["grid"] ** 2}


WORKERS = {
    "weakgrad-1d": run_weakgrad_1d,
    "brian2-1d": run_brian2_1d,
    "weakgrad-2d": run_weakgrad_2d,
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", choices=sorted(WORKERS))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    results = {}
    for name in WORKERS:
        cmd = [sys.executable, __file__, "--worker", name] + (["--quick"] if args.quick else [])
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or ["?"])[-1]
            print(f"  {name}: failed ({tail})", flush=True)
            results[name] = {"error": tail}
            continue
        results[name] = json.loads(p.stdout.strip().splitlines()[-1])
        r = results[name]
        rate = r["neuron_steps"] / r["warm_s"] / 1e6
        print(f"  {name:12s} first {r['first_s']:7.2f} s  warm {r['warm_s']:7.2f} s  "
              f"{rate:7.1f} M neuron-steps/s", flush=True)  # fmt: skip
    w, b = results.get("weakgrad-1d", {}), results.get("brian2-1d", {})
    ratio = b["first_s"] / w["first_s"] if "first_s" in b and "first_s" in w else float("nan")
    ratio_warm = b["warm_s"] / w["warm_s"] if "warm_s" in b and "warm_s" in w else float("nan")
    print("\n| sweep | engine | wall s (incl. compile) | warm s | M neuron-steps/s (warm) |")
    print("|---|---|---|---|---|")
    for name, label in (("weakgrad-1d", "1-D, weakgrad"), ("brian2-1d", "1-D, Brian2 C++"),
                        ("weakgrad-2d", "2-D complete graph, weakgrad")):  # fmt: skip
        r = results.get(name, {})
        if "first_s" in r:
            rate = r["neuron_steps"] / r["warm_s"] / 1e6
            cells = f"{r['neuron_steps']:.3g} steps | {r['first_s']:.2f} | {r['warm_s']:.2f}"
            print(f"| {label} | {cells} | {rate:.1f} |")
    print(
        f"\nBrian2 / weakgrad, 1-D sweep: {ratio:.2f}x wall (incl. compile), {ratio_warm:.2f}x warm"
    )
    info = {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "quick": args.quick,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("landscape-quick.json" if args.quick else "landscape.json")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"info": info, "results": results, "ratio_vs_brian2": ratio,
                               "ratio_vs_brian2_warm": ratio_warm}, indent=2) + "\n")  # fmt: skip
    os.replace(tmp, path)
    print(f"wrote {path}")
    key = "sweep_1e9_seconds" if not args.quick else "sweep_1e7_seconds"
    print(f"{key}={w.get('first_s', float('nan')):.2f} ratio_vs_brian2={ratio:.2f}")


if __name__ == "__main__":
    main()
