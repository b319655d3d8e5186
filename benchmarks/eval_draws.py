"""Accuracy of finished MNIST runs scored noise-free and as the smoothed network.

Node perturbation follows the gradient of the loss averaged over its noise, so the network
it trains is the noisy one. ``weakgrad.training.evaluate(run, draws=N)`` predicts with the
class probabilities averaged over ``N`` draws of that noise (``estimator.eval_draws``; 0: the
noise-free network) from a run's own checkpoint, without retraining. This script scores
several run folders (the ``run_dir`` of ``benchmarks/train.py`` rows) for several ``N`` and
prints validation and test accuracy side by side; choose ``N`` on validation.

    python benchmarks/eval_draws.py RUN [RUN ...] --draws 0,4,8,16 --name eval-draws
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
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (config.json, checkpoint.npz)")
    ap.add_argument("--draws", default="0,4,8,16", help="comma-separated draw counts")
    ap.add_argument("--label", action="append", default=[], help="a name per run, in order")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--name", default="eval-draws")
    args = ap.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from weakgrad.training import evaluate

    draws = [int(d) for d in args.draws.split(",")]
    labels = args.label + [r.name for r in args.runs[len(args.label) :]]
    info = {"machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    rows = []
    path = args.out / f"{args.name}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    for run, label in zip(args.runs, labels, strict=True):
        for n in draws:
            t0 = time.perf_counter()
            r = evaluate(run, draws=n)
            r.update({"label": label, "seconds": time.perf_counter() - t0})
            rows.append(r)
            print(f"  {label:28s} draws {n:3d}: validation {100 * r['val_accuracy']:5.1f}% "
                  f"(loss {r['val_loss']:.3f}), test {100 * r['test_accuracy']:5.1f}% "
                  f"(loss {r['test_loss']:.3f}), {r['seconds']:.0f} s", flush=True)  # fmt: skip
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n")
            os.replace(tmp, path)
    head = " | ".join(f"{n} draws val / test" if n else "noise-free val / test" for n in draws)
    print(f"\n| run | {head} |\n|---|" + "---|" * len(draws))
    for label in labels:
        cells = [
            f"{100 * r['val_accuracy']:.1f}% / {100 * r['test_accuracy']:.1f}%"
            for r in rows
            if r["label"] == label
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
