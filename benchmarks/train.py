"""Training cost and outcome per configuration: wall time per step and per epoch, forward
evaluations per step, peak memory, and validation / test accuracy, for the weak gradient of
each shipped MNIST config and for autodiff (plain and clipped) on the same config: one
table that shows where autodiff trains (short runs) and where it fails (long runs).

    python benchmarks/train.py                     # every config for its own train.steps
    python benchmarks/train.py --steps 20          # cost per step (accuracy after 20 steps)
    python benchmarks/train.py --configs mnist-hh-long --autodiff-steps 300
    python benchmarks/train.py --quick             # 3 steps of two configs (< 1 minute)

Each run is a subprocess (``weakgrad.training.train``), so its peak RSS is its own. Seconds per
step exclude the first step (compilation). An epoch is the 3,600 training digits of the
built-in set at the config's batch size. The results file is rewritten after every run, so
an interrupted benchmark keeps the rows it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = ["mnist-linear", "mnist-ann", "mnist-hh-short", "mnist-hh-long"]
VARIANTS = {
    "weak": [],
    # A whole [estimator] section replaced: the config's node keys do not apply to autodiff.
    "autodiff": ['estimator={name="autodiff"}'],
    "autodiff-clip": ['estimator={name="autodiff", clip=1.0}'],
}


def worker(config: str, variant: str, steps: int, extra: list[str] | None = None) -> dict:
    """One training run; ``steps`` = 0 keeps the config's own number of steps; ``extra``:
    further ``section.key=value`` overrides."""
    import csv

    from weakgrad.config import load_config
    from weakgrad.training import train

    path = ROOT / "configs" / f"{config}.toml"
    steps = steps or load_config(path).train.steps
    overrides = VARIANTS[variant] + [
        f"train.steps={steps}", f"train.checkpoint_every={steps}", *(extra or []),
    ]  # fmt: skip
    cfg = load_config(path, overrides)
    out = Path(tempfile.mkdtemp(prefix="wg_bench_train_"))
    summary = train(cfg, out)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    secs = [float(r["seconds"]) for r in rows]
    per_step = (secs[-1] - secs[0]) / max(len(secs) - 1, 1)
    return {
        "config": config,
        "variant": variant,
        "estimator": cfg.estimator.name,
        "duration_ms": cfg.task.duration_ms if cfg.task.model == "hh" else None,
        "steps": steps,
        "seconds_per_step": per_step,
        "seconds_per_epoch": per_step * 3600 / cfg.train.batch_size,
        "evals_per_step": int(rows[-1]["evals"]),
        "first_loss": float(rows[0]["loss"]),
        "last_loss": float(rows[-1]["loss"]),
        "val_accuracy": float(rows[-1]["val_accuracy"]),
        "test_accuracy": summary["test_accuracy"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # train.keep_best: the state at the best validation accuracy and its test accuracy
        **({"best": summary["best"]} if "best" in summary else {}),
        # estimator.eval_draws: test_accuracy is the smoothed network's; this the noise-free one's
        **{k: summary[k] for k in ("eval_draws", "noise_free_test_accuracy") if k in summary},
        "run_dir": str(out),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=0, help="0: each config's own train.steps")
    ap.add_argument(
        "--autodiff-steps", type=int, default=0, help="steps of the autodiff runs (0: --steps)"
    )
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="config override for every run, e.g. --set train.batch_size=10",
    )  # fmt: skip
    ap.add_argument("--worker", nargs=3, metavar=("CONFIG", "VARIANT", "STEPS"))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--name", default="", help="results file name (default from --steps)")
    args = ap.parse_args()
    if args.worker:
        c, v, s = args.worker
        print(json.dumps(worker(c, v, int(s), args.set)))
        return
    configs = ["mnist-ann", "mnist-hh-short"] if args.quick else args.configs.split(",")
    variants = ["weak"] if args.quick else args.variants.split(",")
    steps = 3 if args.quick else args.steps
    args.out.mkdir(parents=True, exist_ok=True)
    name = "train-quick.json" if args.quick else f"train-{steps or 'config'}steps.json"
    if args.name:
        name = f"{args.name}.json"
    path = args.out / name
    info = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    rows = []
    for c in configs:
        for v in variants:
            n = args.autodiff_steps if v.startswith("autodiff") and args.autodiff_steps else steps
            cmd = [sys.executable, __file__, "--worker", c, v, str(n)]
            cmd += [f"--set={o}" for o in args.set]
            p = subprocess.run(
                cmd, capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu")
            )
            if p.returncode != 0:
                tail = (p.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  {c} {v}: failed ({tail})", flush=True)
                rows.append({"config": c, "variant": v, "error": tail})
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["overrides"] = args.set
            rows.append(r)
            print(f"  {c:15s} {v:14s} {r['steps']:5d} steps {r['seconds_per_step']:7.3f} s/step  "
                  f"{r['evals_per_step']:5d} evals  "
                  f"{r['peak_rss_mb']:7.0f} MB  val {100 * r['val_accuracy']:5.1f}%  "
                  f"test {100 * r['test_accuracy']:5.1f}%", flush=True)  # fmt: skip
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n")
            os.replace(tmp, path)
    print("\n| config | gradient | steps | test accuracy | validation accuracy | s / step "
          "| s / epoch | evals / step | peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['config']} | {r['variant']} | failed: {r['error']} | | | | | | |")
            continue
        print(f"| {r['config']} | {r['variant']} ({r['estimator']}) | {r['steps']} | "
              f"{100 * r['test_accuracy']:.1f}% | {100 * r['val_accuracy']:.1f}% | "
              f"{r['seconds_per_step']:.3f} | {r['seconds_per_epoch']:.0f} | "
              f"{r['evals_per_step']} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
