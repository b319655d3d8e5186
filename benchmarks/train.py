"""Training cost and outcome per configuration: wall time per step and per epoch, forward
evaluations per step, peak memory, and validation / test accuracy, for the weak gradient of
each shipped MNIST config and for backprop through time on the same config: autodiff (plain
and clipped) and the surrogate gradient (``surrogate``, SuperSpike of slope 10): one table that
shows where backprop trains (short runs) and where it fails (long runs).

    python benchmarks/train.py                     # the default configs for their train.steps
    python benchmarks/train.py --steps 20          # cost per step (accuracy after 20 steps)
    python benchmarks/train.py --configs mnist-hh-long --autodiff-steps 300
    python benchmarks/train.py --configs mnist-hh-regression-100ms \
        --variants weak,autodiff,autodiff-clip,surrogate --steps 100 --name train-hh-baselines
    python benchmarks/train.py --quick             # 3 steps of two configs (< 1 minute)

Configs: the default run covers the node-perturbation and non-spiking configs (``CONFIGS``);
the study's regression configs (``HH_REGRESSION``, 1,000 steps each: 20-35 minutes at 50 or
100 ms on 2 cores) run when named in ``--configs``. Variants: ``--variants`` defaults to weak,
autodiff and autodiff-clip; ``surrogate`` runs when named. On these HH networks the synapses carry
graded release, so no spike lies on the path from a weight to the loss and the surrogate
gradient equals autodiff; each surrogate row records ``surrogate_max_abs_diff``, the largest
difference between the two gradients on the first batch at initialisation, to show it.

Each run is a subprocess (``weakgrad.training.train``), so its peak RSS is its own. Seconds per
step are the mean over steps after the first (compilation) that did not validate;
``seconds_total`` is the whole run, compilation and validation included. An epoch is the 3,600
training digits of the built-in set at the config's batch size. ``--autodiff-steps`` sets the
steps of the backprop variants (autodiff, autodiff-clip, surrogate). Each row keeps its
validation curve (``val_curve``: [steps done, accuracy]). The results file is rewritten after
every run, so an interrupted benchmark keeps the rows it finished.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = ["mnist-linear", "mnist-ann", "mnist-hh-short", "mnist-hh-long"]
# Study 000's regression sampling on the HH network at 10, 50 and 100 ms (slow: named only).
HH_REGRESSION = [f"mnist-hh-regression-{t}ms" for t in (10, 50, 100)]
KNOWN_CONFIGS = CONFIGS + HH_REGRESSION
VARIANTS = {
    "weak": [],
    # A whole [estimator] section replaced: the config's node keys do not apply to autodiff.
    "autodiff": ['estimator={name="autodiff"}'],
    "autodiff-clip": ['estimator={name="autodiff", clip=1.0}'],
    "surrogate": ['estimator={name="surrogate"}'],
}
DEFAULT_VARIANTS = ["weak", "autodiff", "autodiff-clip"]
# Backprop through time: --autodiff-steps applies to these.
BPTT_VARIANTS = frozenset({"autodiff", "autodiff-clip", "surrogate"})


def surrogate_max_abs_diff(cfg: Any) -> float:
    """Largest |surrogate gradient - autodiff gradient| over all parameters, on the first
    training batch at initialisation (0: the surrogate does not touch this network)."""
    import jax
    import jax.numpy as jnp

    from weakgrad.estimators import Autodiff

    task = cfg.task.build(cfg)
    params, obj, key = task.initial_params(), task.objective_at(0), jax.random.key(0)
    g_auto, _, _ = Autodiff().estimate(obj, params, None, key=key)
    g_surr, _, _ = cfg.estimator.build().estimate(obj, params, None, key=key)
    diffs = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), g_auto, g_surr)
    return float(max(jax.tree.leaves(diffs)))


def names(flag: str, value: str, known: list[str]) -> list[str]:
    """The comma-separated names of ``--flag``, each checked against ``known``."""
    out = [v for v in value.split(",") if v]
    bad = [v for v in out if v not in known]
    if bad or not out:
        raise SystemExit(
            f"--{flag}: unknown {', '.join(bad) or '(none given)'}; choose from {','.join(known)}."
        )
    return out


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
    # Steps after the first (compilation) that did not validate; with none, all after the first.
    # A validating row has a val_loss; its accuracy may be empty (not finite).
    times = [b - a for a, b in itertools.pairwise(secs)]
    plain = [t for t, r in zip(times, rows[1:], strict=True) if r["val_loss"] == ""]
    plain = plain or times
    per_step = sum(plain) / len(plain) if plain else secs[0]
    return {
        "config": config,
        "variant": variant,
        "estimator": cfg.estimator.name,
        "duration_ms": cfg.task.duration_ms if cfg.task.model == "hh" else None,
        "steps": steps,
        "seconds_per_step": per_step,
        "seconds_per_epoch": per_step * 3600 / cfg.train.batch_size,
        "seconds_total": secs[-1],
        "evals_per_step": int(rows[-1]["evals"]),
        "first_loss": float(rows[0]["loss"]),
        "last_loss": float(rows[-1]["loss"]),
        "val_accuracy": float(rows[-1]["val_accuracy"] or "nan"),
        "test_accuracy": summary["test_accuracy"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # train.keep_best: the state at the best validation accuracy and its test accuracy
        **({"best": summary["best"]} if "best" in summary else {}),
        # estimator.eval_draws: test_accuracy is the smoothed network's; this the noise-free one's
        **{k: summary[k] for k in ("eval_draws", "noise_free_test_accuracy") if k in summary},
        "val_curve": [[int(r["step"]) + 1, float(r["val_accuracy"] or "nan")]
                      for r in rows if r["val_loss"] != ""],
        **({"surrogate_max_abs_diff": surrogate_max_abs_diff(cfg)}
           if variant == "surrogate" else {}),
        "run_dir": str(out),
    }  # fmt: skip


def _write_rows(path: Path, info: dict, rows: list[dict]) -> None:
    """The results file, replaced atomically: an interrupted benchmark keeps its rows."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n")
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=0, help="0: each config's own train.steps")
    ap.add_argument(
        "--autodiff-steps", type=int, default=0,
        help="steps of the backprop runs: autodiff, autodiff-clip, surrogate (0: --steps)",
    )  # fmt: skip
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"of {','.join(KNOWN_CONFIGS)}")
    ap.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help=f"of {','.join(VARIANTS)}"
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="config override for every run, e.g. --set train.batch_size=10",
    )  # fmt: skip
    ap.add_argument("--worker", nargs=3, metavar=("CONFIG", "VARIANT", "STEPS"))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--name", default="", help="results file name (default from --steps)")
    ap.add_argument(
        "--append", action="store_true",
        help="keep the rows already in the results file (a row of the same config and variant "
        "is replaced): one file from several shorter invocations",
    )  # fmt: skip
    args = ap.parse_args()
    if args.worker:
        c, v, s = args.worker
        print(json.dumps(worker(c, v, int(s), args.set)))
        return
    configs = (
        ["mnist-ann", "mnist-hh-short"]
        if args.quick
        else names("configs", args.configs, KNOWN_CONFIGS)
    )
    variants = ["weak"] if args.quick else names("variants", args.variants, list(VARIANTS))
    steps = 3 if args.quick else args.steps
    args.out.mkdir(parents=True, exist_ok=True)
    name = "train-quick.json" if args.quick else f"train-{steps or 'config'}steps.json"
    if args.name:
        name = f"{args.name}.json"
    path = args.out / name
    info = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    rows = json.loads(path.read_text())["rows"] if args.append and path.exists() else []
    for c in configs:
        for v in variants:
            load = os.getloadavg()[0]
            n = args.autodiff_steps if v in BPTT_VARIANTS and args.autodiff_steps else steps
            cmd = [sys.executable, __file__, "--worker", c, v, str(n)]
            cmd += [f"--set={o}" for o in args.set]
            p = subprocess.run(
                cmd, capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu")
            )
            earlier = [r for r in rows if (r["config"], r["variant"]) == (c, v)]
            if p.returncode != 0:
                tail = (p.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  {c} {v}: failed ({tail})", flush=True)
                if not earlier:  # --append keeps an earlier good row of this pair
                    rows.append({"config": c, "variant": v, "error": tail})
                _write_rows(path, info, rows)
                continue
            rows = [r for r in rows if (r["config"], r["variant"]) != (c, v)]
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["overrides"] = args.set
            # 1-minute load average of the machine when the run started and ended (2 cores).
            r["load_avg"] = [load, os.getloadavg()[0]]
            rows.append(r)
            print(f"  {c:26s} {v:14s} {r['steps']:5d} steps {r['seconds_per_step']:7.3f} s/step  "
                  f"{r['evals_per_step']:5d} evals  "
                  f"{r['peak_rss_mb']:7.0f} MB  val {100 * r['val_accuracy']:5.1f}%  "
                  f"test {100 * r['test_accuracy']:5.1f}%", flush=True)  # fmt: skip
            if "surrogate_max_abs_diff" in r:
                print(f"    max |surrogate - autodiff| at initialisation: "
                      f"{r['surrogate_max_abs_diff']:.3g}", flush=True)  # fmt: skip
            _write_rows(path, info, rows)
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
