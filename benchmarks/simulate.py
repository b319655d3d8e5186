"""Simulation throughput: weakgrad vs Brian2 (C++ standalone) vs Jaxley, side by side.

Workload: N independent Hodgkin-Huxley neurons, constant currents spread evenly from 0 to
200 uA/cm^2 (silent, onset spike, repetitive firing, above the 0 mV cutoff, depolarisation
block), plus an independent Gaussian noise current per neuron and per step (std ``--noise``
uA/cm^2), exponential Euler (Jaxley: its default implicit Euler), dt = 0.01 ms, 100 ms.
Throughput is neuron-steps per second of warm runs (best of ``--repeats``); compile time is
reported separately. Each engine runs in its own subprocess.

    python benchmarks/simulate.py            # full workload
    python benchmarks/simulate.py --quick    # < 1 minute; last line is machine-readable

Peers are optional (``pip install -e '.[peers]'``); a missing peer is reported, not fatal.
Engines:
    weakgrad       one JAX CPU device per core, neurons split into one group per device
    weakgrad-1dev  a single JAX device (one core), for a like-for-like view
    brian2         C++ standalone, OpenMP threads = cores; noise drawn by run_regularly
    jaxley         one HH compartment, jit(vmap) over cells sharded over one device per core;
                   noise pre-drawn (not timed)
    jaxley-1dev    the same on a single device (Jaxley's usual single-core use)
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


def _workload(args):
    import numpy as np

    return np.linspace(0.0, 200.0, args.neurons), round(args.ms / args.dt)


# ----------------------------------------------------------------------------- workers
def _timed(first_call, warm_call, repeats: int, **extra) -> dict:
    """Time ``first_call`` (compile + run) and the best of ``repeats`` ``warm_call`` s;
    ``extra`` entries may be callables, evaluated on the first call's result."""
    t0 = time.perf_counter()
    result = first_call()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        warm_call()
        times.append(time.perf_counter() - t0)
    best = min(times)
    out = {"first_call_s": first, "compile_s": max(first - best, 0.0), "run_s": best}
    out.update({k: v(result) if callable(v) else v for k, v in extra.items()})
    return out


def run_weakgrad(args, devices: int) -> dict:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax
    import jax.numpy as jnp
    import numpy as np

    import weakgrad as wg
    from weakgrad.parallel import shard_leading

    currents, steps = _workload(args)
    d = jax.device_count()
    if args.neurons % d:
        raise SystemExit(f"--neurons must be a multiple of the device count {d}")
    hh = wg.HodgkinHuxley(noise_std=args.noise)

    def group(w, key):
        net = wg.Network.independent(w.shape[0], hh, weight=w)
        return wg.simulate(net, jnp.ones(1), dt=args.dt, steps=steps, key=key).counts[0]

    run = jax.jit(jax.vmap(group))
    w = shard_leading(jnp.asarray(currents, jnp.float32).reshape(d, -1))
    keys = shard_leading(jax.random.split(jax.random.key(0), d))
    call = lambda: run(w, keys).block_until_ready()  # noqa: E731
    return _timed(
        call,
        call,
        args.repeats,
        spikes=lambda c: int(np.asarray(c).sum()),
        dtype="float32",
        version=wg.__version__ + f" (jax {jax.__version__}, {d} device(s))",
    )


def run_brian2(args) -> dict:
    import brian2 as b2
    from brian2 import cm2, ms, uA
    from peers import brian2_hh_group

    currents, steps = _workload(args)
    build = tempfile.mkdtemp(prefix="wg_bench_brian2_")
    b2.set_device("cpp_standalone", build_on_run=False, directory=build)
    b2.prefs.devices.cpp_standalone.openmp_threads = os.cpu_count() or 1
    b2.defaultclock.dt = args.dt * ms
    g = brian2_hh_group(
        args.neurons,
        """
        I = I_dc + I_noise : amp/meter**2
        I_dc : amp/meter**2 (constant)
        I_noise : amp/meter**2
        """,
        {"sigma": args.noise * uA / cm2},
    )
    g.I_dc = currents * uA / cm2
    if args.noise > 0:
        g.run_regularly("I_noise = sigma * randn()", when="before_groups", name="noise")
    mon = b2.SpikeMonitor(g, name="spikes")
    b2.run(steps * args.dt * ms)
    return _timed(
        lambda: b2.device.build(directory=build, compile=True, run=True, debug=False),
        lambda: b2.device.run(directory=build, with_output=False, run_args=[]),
        args.repeats,
        spikes=lambda _: int(mon.num_spikes),
        dtype="float64",
        version=f"{b2.__version__} cpp_standalone, "
        f"{b2.prefs.devices.cpp_standalone.openmp_threads} threads",
    )


def run_jaxley(args, devices: int) -> dict:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax

    jax.config.update("jax_enable_x64", False)
    import jax.numpy as jnp
    import jaxley as jx
    import numpy as np
    from jaxley.channels import HH

    currents, steps = _workload(args)
    comp = jx.Compartment()
    comp.insert(HH())
    comp.set("HH_eLeak", -54.4)
    comp.set("v", -65.0)
    comp.init_states()
    comp.record("v", verbose=False)
    r, length = comp.nodes["radius"].iloc[0], comp.nodes["length"].iloc[0]
    area_cm2 = 2 * np.pi * r * length * 1e-8
    to_na = area_cm2 * 1e3  # uA/cm^2 -> nA
    t_max = steps * args.dt

    def cell(i_na):
        stim = comp.data_stimulate(i_na)
        v = jx.integrate(comp, data_stimuli=stim, delta_t=args.dt, t_max=t_max)[0]
        return jnp.sum((v[:-1] <= 0.0) & (v[1:] > 0.0))

    run = jax.jit(jax.vmap(cell))
    noise = args.noise * jax.random.normal(jax.random.key(0), (args.neurons, steps), jnp.float32)
    i_na = (jnp.asarray(currents, jnp.float32)[:, None] + noise) * to_na
    if jax.device_count() > 1:  # same sharding of the cell axis as weakgrad gets
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(jax.devices()), ("cells",))
        i_na = jax.device_put(i_na, NamedSharding(mesh, PartitionSpec("cells")))
    i_na = i_na.block_until_ready()
    call = lambda: run(i_na).block_until_ready()  # noqa: E731
    return _timed(
        call,
        call,
        args.repeats,
        spikes=lambda c: int(np.asarray(c).sum()),
        dtype=str(i_na.dtype),
        version=f"{jx.__version__} (jax {jax.__version__}, {jax.device_count()} device(s)), "
        "noise pre-drawn",
    )


WORKERS = {
    "weakgrad": lambda a: run_weakgrad(a, os.cpu_count() or 1),
    "weakgrad-1dev": lambda a: run_weakgrad(a, 1),
    "brian2": run_brian2,
    "jaxley": lambda a: run_jaxley(a, os.cpu_count() or 1),
    "jaxley-1dev": lambda a: run_jaxley(a, 1),
}


# ----------------------------------------------------------------------------- driver
def _spawn(engine: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        engine,
        "--neurons",
        str(args.neurons),
        "--ms",
        str(args.ms),
        "--dt",
        str(args.dt),
        "--noise",
        str(args.noise),
        "--repeats",
        str(args.repeats),
    ]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"engine": engine, "error": err[:200]}
    return {"engine": engine, **json.loads(lines[-1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller workload (< 1 minute)")
    p.add_argument("--neurons", type=int, default=1000)
    p.add_argument("--ms", type=float, default=100.0)
    p.add_argument("--dt", type=float, default=0.01)
    p.add_argument("--noise", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engines", default="weakgrad,weakgrad-1dev,brian2,jaxley,jaxley-1dev")
    p.add_argument("--out", type=Path, default=HERE / "results" / "simulate.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    if args.quick:
        args.ms, args.repeats = 20.0, 2
        if "--out" not in sys.argv:
            args.out = HERE / "results" / "simulate-quick.json"

    steps = round(args.ms / args.dt)
    work = args.neurons * steps
    results = []
    for engine in args.engines.split(","):
        r = _spawn(engine.strip(), args)
        if "run_s" in r:
            r["msteps_per_s"] = work / r["run_s"] / 1e6
        results.append(r)
        print(
            f"  {engine}: "
            + (
                f"{r['msteps_per_s']:.1f} M neuron-steps/s"
                if "run_s" in r
                else f"unavailable ({r['error']})"
            ),
            file=sys.stderr,
        )

    by = {r["engine"]: r for r in results}
    wg_rate = by.get("weakgrad", {}).get("msteps_per_s")
    print(
        f"\nHH throughput: {args.neurons} neurons x {steps} steps (dt {args.dt} ms, "
        f"{args.ms:g} ms), noise {args.noise} uA/cm^2 per step; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    header = (
        f"{'engine':<15}{'M steps/s':>11}{'run s':>9}{'compile s':>11}{'spikes':>9}"
        f"  {'weakgrad x':>10}  version"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if "run_s" not in r:
            print(f"{r['engine']:<15}{'n/a':>11}  {r['error']}")
            continue
        ratio = f"{wg_rate / r['msteps_per_s']:.2f}" if wg_rate else "n/a"
        print(
            f"{r['engine']:<15}{r['msteps_per_s']:>11.1f}{r['run_s']:>9.3f}{r['compile_s']:>11.2f}"
            f"{r['spikes']:>9}  {ratio:>10}  {r['version']}"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "workload": {
            "neurons": args.neurons,
            "steps": steps,
            "dt_ms": args.dt,
            "noise_uA_cm2": args.noise,
            "repeats": args.repeats,
        },
        "machine": {
            "processor": platform.processor(),
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, args.out)

    def ratio(peer):
        rate = by.get(peer, {}).get("msteps_per_s")
        return f"{wg_rate / rate:.2f}" if (wg_rate and rate) else "nan"

    print(
        f"weakgrad_Msteps_per_s={wg_rate or float('nan'):.1f} "
        f"ratio_vs_jaxley={ratio('jaxley')} ratio_vs_brian2={ratio('brian2')}"
    )


if __name__ == "__main__":
    main()
