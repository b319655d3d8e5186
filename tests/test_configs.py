"""Every shipped config trains for 2 steps (issue 16): as shipped, except the simulated
duration (20 time steps), the validation and test sizes, the noise draws averaged in
evaluation and the best-state scoring, which shorten the run without changing its
structure (layer sizes, samples vs parameters, alternation, readout, estimator)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))


def shortening(config: dict) -> list[str]:
    """``--set`` overrides that shorten a run, only for keys the config itself sets."""
    task, train, est = (config.get(k, {}) for k in ("task", "train", "estimator"))
    sets = ["train.steps=2", "train.eval_every=1", "train.checkpoint_every=1"]
    if "duration_ms" in task:
        sets.append(f"task.duration_ms={20 * task.get('dt_ms', 0.05):.6g}")
    if "eval_size" in train:
        # 200: one evaluation chunk; the final test scoring then reuses its compiled shape
        # on the first 200 test examples.
        sets += ["train.eval_size=200", "train.test_size=200"]
    if "eval_draws" in est:
        sets.append("estimator.eval_draws=2")
    if train.get("keep_best"):
        # Scoring the best state repeats the final test scoring (tested in test_train.py).
        sets.append("train.keep_best=false")
    return sets


def test_configs_are_found():
    assert len(CONFIGS) >= 5, CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_trains_two_steps(path, tmp_path):
    config = tomllib.loads(path.read_text())
    args = ["train", path]
    for s in shortening(config):
        args += ["--set", s]
    out = tmp_path / "run"
    r = run_cli(*args, "--out", out)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2
    if "train.test_size=200" in args:  # the batched tasks score the first 200 test examples
        assert summary["test_size"] == 200
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2, rows  # header and one row per step
