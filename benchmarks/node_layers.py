"""Cost of a node- or weight-perturbation estimate per layer, with and without reusing the
lower layers.

Workload: the shipped ``mnist-hh-long`` case, the HH network 784-100-10 over 100 ms at dt
0.1 ms with the mean-voltage readout, a batch of 40 built-in digits, one layer perturbed per
estimate (what ``Alternate`` runs).
- Node perturbation, noise held for the whole run: ``NodePerturbation(reuse_lower=True)``
  (the default) simulates the layers below the perturbed one once per digit and feeds
  their recorded output to every perturbed run; ``reuse_lower=False`` simulates the whole
  network for every run.
- Weight perturbation, the study's regression (S = 100, sigma 0.01): ``LayerOnly``
  (what ``Alternate`` uses for sampling estimators) reuses the layers below the same way;
  ``Masked`` with the layer's mask simulates the whole network for every run.
The gradients are the same (``tests/test_estimators.py`` checks it: bit for bit for node
perturbation, to float rounding for ``LayerOnly``); only the time differs. Each estimate
is one ``jax.jit`` call; best of the warm repeats.

    python benchmarks/node_layers.py            # ~2 minutes on 2 cores (1.4 measured)
    python benchmarks/node_layers.py --quick    # 20 ms, batch 10; last line is
    # output_layer_speedup=<x> (node perturbation, S = 4: reuse off / reuse on)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="20 ms, batch 10, 2 repeats")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import equinox as eqx
    import jax

    from weakgrad.estimators import LayerOnly, Masked, NodePerturbation, Regression, layer_groups
    from weakgrad.tasks.mnist import load_mnist, mnist_objective

    duration, batch = (20.0, 10) if args.quick else (100.0, 40)
    repeats = 2 if args.quick else args.repeats
    data = load_mnist()
    obj = mnist_objective(
        "hh", data.x_train[:batch], data.y_train[:batch], key=jax.random.key(0),
        duration_ms=duration, dt_ms=0.1, readout="voltage",
    )  # fmt: skip
    p = obj.params()

    @eqx.filter_jit
    def estimate(est, key):
        g, _, info = est.estimate(obj, p, (), key=key)
        return g, info.evals

    def best(est) -> tuple[float, float]:
        t0 = time.perf_counter()
        jax.block_until_ready(estimate(est, jax.random.key(0)))
        first = time.perf_counter() - t0
        times = []
        for r in range(1, repeats + 1):
            t0 = time.perf_counter()
            jax.block_until_ready(estimate(est, jax.random.key(r)))
            times.append(time.perf_counter() - t0)
        return min(times), first  # min: the stable statistic on a shared machine

    info = {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "duration_ms": duration,
        "batch": batch,
    }
    print(f"# {info}", flush=True)

    def node(layer: int, s: int):
        def make(reuse: bool):
            return NodePerturbation(
                sigma=(6.0, 1.0), samples=s, layers=(layer,), hold=None, reuse_lower=reuse
            )

        return make

    def regression(layer: int, s: int):
        reg = Regression(sigma=0.01, samples=s)
        return lambda reuse: LayerOnly(reg, layer) if reuse else Masked(reg, layer_groups(p)[layer])

    # (estimator, perturbed layer, samples, make(reuse) -> estimator)
    cases = [("node", 1, 4, node(1, 4)), ("node", 1, 8, node(1, 8)), ("node", 1, 32, node(1, 32)),
             ("node", 0, 12, node(0, 12)), ("regression", 1, 100, regression(1, 100)),
             ("regression", 0, 100, regression(0, 100))]  # fmt: skip
    rows = []
    for kind, layer, s, make in cases:
        row = {"estimator": kind, "layer": layer, "samples": s}
        for reuse in (False, True):
            sec, first = best(make(reuse))
            row[f"seconds_reuse_{'on' if reuse else 'off'}"] = sec
            row[f"compile_seconds_reuse_{'on' if reuse else 'off'}"] = first - sec
        row["speedup"] = row["seconds_reuse_off"] / row["seconds_reuse_on"]
        rows.append(row)
        print(
            f"  {kind} layer {layer} S={s:3d}: reuse off {row['seconds_reuse_off']:.3f} s, "
            f"on {row['seconds_reuse_on']:.3f} s, {row['speedup']:.2f}x",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("node-layers-quick.json" if args.quick else "node-layers.json")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n")
    os.replace(tmp, path)
    print(
        "\n| estimator | perturbed layer | samples | s / estimate, whole network per run "
        "| s / estimate, lower layers reused | reused is |\n|---|---|---|---|---|---|"
    )
    for r in rows:
        name = "hidden (0)" if r["layer"] == 0 else "output (1)"
        print(
            f"| {r['estimator']} | {name} | {r['samples']} | {r['seconds_reuse_off']:.3f} | "
            f"{r['seconds_reuse_on']:.3f} | {r['speedup']:.2f}x faster |"
        )
    print(f"output_layer_speedup={rows[0]['speedup']:.2f}")


if __name__ == "__main__":
    main()
