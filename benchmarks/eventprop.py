"""EventProp vs surrogate-gradient BPTT: cost of one gradient on the same network and batch.

    python benchmarks/eventprop.py             # 5-120-3 Yin-Yang network, batch 32 (~2 min)
    python benchmarks/eventprop.py --quick     # 5-20-3, batch 8 (< 1 minute)
    python benchmarks/eventprop.py --params run/best.npz   # at trained weights

Network and batch: ``configs/yinyang-lif-eventprop.toml`` (5-120-3 LIF neurons with
exponential current synapses, max-voltage loss, the first training batch); the surrogate
twin runs on the config's 0.1 ms grid (300 steps; SuperSpike). Spike counts, hence
EventProp's cost, depend on the weights: the default is the config's initial weights
(``--params`` a run's ``best.npz`` or ``checkpoint.npz`` for trained ones). Gaussian
smoothing (64 samples, the weak-gradient config) is timed beside them.

Each method runs in its own subprocess: compile time, the best of ``--repeats`` warm runs
(seconds per gradient), XLA's memory analysis of the compiled program (temporary buffers +
arguments + outputs: the peak of what the program itself allocates) and the process's peak
RSS (everything, including JAX's runtime; ~the same baseline in every process). Results:
``benchmarks/results/eventprop[-quick][-trained].json`` (written through ``weakgrad.io``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
METHODS = ("eventprop", "surrogate", "smoothing", "forward-event", "forward-grid")


def _objective(quick: bool, params_file: str | None):
    import jax.numpy as jnp
    import numpy as np

    from weakgrad.config import load_config

    over = ["task.hidden=20", "train.batch_size=8"] if quick else []
    cfg = load_config(ROOT / "configs" / "yinyang-lif-eventprop.toml", over)
    task = cfg.task.build(cfg)
    obj = task.objective_at(0)
    params = task.initial_params()
    if params_file:  # a training checkpoint: the parameters are the state's first leaves
        import jax

        leaves, treedef = jax.tree_util.tree_flatten(params)
        with np.load(params_file) as data:
            new = [jnp.asarray(data[f"leaf_{i}"], x.dtype) for i, x in enumerate(leaves)]
        params = jax.tree_util.tree_unflatten(treedef, new)
    return obj, params


def worker(method: str, quick: bool, repeats: int, params_file: str | None) -> dict:
    import equinox as eqx
    import jax

    from weakgrad.estimators import EventProp, GaussianSmoothing, SurrogateGradient
    from weakgrad.sim.surrogates import SuperSpike

    obj, params = _objective(quick, params_file)
    key = jax.random.key(0)
    est = {
        "eventprop": EventProp(),
        "surrogate": SurrogateGradient(SuperSpike(beta=10.0)),
        "smoothing": GaussianSmoothing(sigma=0.05, samples=64),
    }.get(method)
    if est is not None:

        def fn(o, p):
            g, _, info = est.estimate(o, p, (), key=key)
            return g, info.loss
    else:
        grid = method == "forward-grid"

        def fn(o, p):
            return (o.with_surrogate(SuperSpike()) if grid else o)(p, key)

    dyn, static = eqx.partition((obj, params), eqx.is_array)
    jitted = jax.jit(lambda d: fn(*eqx.combine(d, static)))
    t0 = time.perf_counter()
    compiled = jitted.lower(dyn).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    xla_bytes = None
    if mem is not None:
        xla_bytes = int(
            mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
        )
    jax.block_until_ready(compiled(dyn))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(dyn))
        times.append(time.perf_counter() - t0)
    loss = out[1] if isinstance(out, tuple) else out
    counts = eqx.filter_jit(lambda o, p: o.traces(p).counts.sum(1))(obj, params)
    return {
        "method": method,
        "batch": int(obj.batch_size),
        "hidden": int(obj.net.sizes[1]),
        "grid_steps": int(obj.steps),
        "seconds": min(times),
        "seconds_median": sorted(times)[len(times) // 2],
        "compile_seconds": compile_s,
        "xla_mb": None if xla_bytes is None else xla_bytes / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": float(loss),
        "spikes_per_example": float(counts.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--params", default=None, help="a run's best.npz / checkpoint.npz")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.quick, args.repeats, args.params)))
        return
    rows = []
    for m in METHODS:
        cmd = [sys.executable, __file__, "--worker", m, "--repeats", str(args.repeats)]
        cmd += ["--quick"] * args.quick + (["--params", args.params] if args.params else [])
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            tail = r.stderr.strip().splitlines()[-1:] or ["?"]
            print(f"  {m}: failed ({tail[0]})", flush=True)
            rows.append({"method": m, "error": tail[0]})
            continue
        row = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  {m:14s} {row['seconds']:.4f} s  xla {row['xla_mb']:.1f} MB  "
              f"rss {row['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    ok = {r["method"]: r for r in rows if "error" not in r}
    ep, sg = ok.get("eventprop"), ok.get("surrogate")
    print("\n| method | s / gradient | compile s | XLA buffers MB | peak RSS MB | loss |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['method']} | failed: {r['error']} | | | | |")
            continue
        print(f"| {r['method']} | {r['seconds']:.4f} | {r['compile_seconds']:.1f} | "
              f"{r['xla_mb']:.2f} | {r['peak_rss_mb']:.0f} | {r['loss']:.4f} |")  # fmt: skip
    summary = {}
    if ep and sg:
        summary = {
            "surrogate_over_eventprop_time": sg["seconds"] / ep["seconds"],
            "surrogate_over_eventprop_xla_memory": sg["xla_mb"] / ep["xla_mb"],
        }
        print(f"\nsurrogate / eventprop: time {summary['surrogate_over_eventprop_time']:.2f}x, "
              f"XLA memory {summary['surrogate_over_eventprop_xla_memory']:.2f}x "
              f"({ep['spikes_per_example']:.0f} spikes per example)")  # fmt: skip
    import jax

    from weakgrad.io import write_json

    name = "eventprop" + "-quick" * args.quick + "-trained" * bool(args.params)
    path = HERE / "results" / f"{name}.json"
    write_json(path, {
        "machine": f"{platform.machine()} {platform.processor()}", "jax": jax.__version__,
        "devices": str(jax.devices()), "params": args.params or "initial",
        "rows": rows, "summary": summary,
    })  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
