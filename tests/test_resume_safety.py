"""Issue 14, training side: a resume follows the run it continues (refused and allowed
changes, history.jsonl), non-finite numbers stop a run before anything of that step is
written, one writer per run folder, and corrupt or edited run files get one clear line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from cli_helpers import SUITE_XLA_FLAGS, run_cli

from weakgrad.config import ConfigError, load_config
from weakgrad.sim.network import SimulationError
from weakgrad.training import evaluate, train

# The linear model on 60 digits: each run compiles in well under a second and takes a few
# milliseconds per step. Checkpoints every 2 steps, evaluations every 3.
LIN = [
    "task.model=linear", "task.train_size=60", "train.steps=6", "train.batch_size=5",
    "train.eval_every=3", "train.eval_size=20", "train.checkpoint_every=2",
    "estimator.samples=12", "estimator.sigma=0.05",
]  # fmt: skip


class Killed(Exception):
    pass


def _kill_at(at):
    def die(step, row):
        if step == at:
            raise Killed

    return die


_cli = run_cli


def _one_line_error(r, code=2):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "Aborted" not in r.stderr
    return lines[0]


def _files(folder):
    """Every file of a folder with its bytes: to assert that a refusal wrote nothing."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _leaves(path):
    with np.load(path) as d:
        return [d[f"leaf_{i}"] for i in range(int(d["n_leaves"]))], int(d["step"])


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A 6-step run killed after step 3: checkpoint at step 4, metrics rows 0-3."""
    run = tmp_path_factory.mktemp("killed") / "run"
    with pytest.raises(Killed):
        train(load_config(None, LIN), run, progress=_kill_at(3))
    assert _leaves(run / "checkpoint.npz")[1] == 4
    return run


@pytest.fixture
def run(killed, tmp_path):
    """A fresh copy of the killed run, for a test to resume or damage."""
    return shutil.copytree(killed, tmp_path / "run")


# --- what a resume may change ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        (["task.model=ann"], "task.model: 'linear' -> 'ann'"),
        (["estimator.samples=8"], "estimator.samples: 12 -> 8"),
        (["optimizer.learning_rate=0.02"], "optimizer.learning_rate: 0.01 -> 0.02"),
        (["train.seed=1", "train.batch_size=4"], "train.batch_size: 5 -> 4; train.seed: 0 -> 1"),
        (['estimator={name="autodiff"}'], "estimator.name: 'regression' -> 'autodiff'"),
        (["train.eval_size=10"], "train.eval_size: 20 -> 10"),
    ],
    ids=["model", "estimator", "optimizer", "seed-and-batch", "estimator-switch", "eval-size"],
)
def test_resume_refuses_a_change_of_trajectory_and_writes_nothing(run, change, listed):
    before = _files(run)
    with pytest.raises(ConfigError) as err:
        train(load_config(None, [*LIN, *change]), run, resume=True)
    message = str(err.value)
    assert listed in message and "--resume would change how" in message
    safe = "train.steps, train.eval_every, train.checkpoint_every, train.test_size"
    assert f"only {safe} may change" in message
    assert _files(run) == before


def test_resume_refuses_fewer_steps_than_the_checkpoint_and_cosine_length_changes(run):
    before = _files(run)
    with pytest.raises(ConfigError, match=r"train.steps = 3 is below the checkpoint's step \(4 "):
        train(load_config(None, [*LIN, "train.steps=3"]), run, resume=True)
    assert _files(run) == before
    # With a cosine schedule the learning rate of every step depends on train.steps.
    cosine = run.parent / "cosine"
    with pytest.raises(Killed):
        train(load_config(None, [*LIN, "optimizer.schedule=cosine"]), cosine,
              progress=_kill_at(1))  # fmt: skip
    with pytest.raises(ConfigError, match=r"train.steps: 6 -> 8\).*not with optimizer.schedule"):
        train(load_config(None, [*LIN, "optimizer.schedule=cosine", "train.steps=8"]), cosine,
              resume=True)  # fmt: skip


def test_resume_with_more_steps_ends_where_an_uninterrupted_run_ends(run, tmp_path):
    """The allowed change, through the CLI without a config file: --set applies on top of
    the run's config.json, the change is recorded and config.json shows it."""
    full = tmp_path / "full"
    train(load_config(None, [*LIN, "train.steps=8"]), full)
    refused = _cli("train", "--resume", "--set", "task.model=ann", "--out", run)
    assert "task.model: 'linear' -> 'ann'" in _one_line_error(refused)
    r = _cli("train", "--resume", "--set", "train.steps=8", "--set", "train.eval_every=2",
             "--out", run)  # fmt: skip
    assert r.returncode == 0, r.stderr
    a, step_a = _leaves(full / "checkpoint.npz")
    b, step_b = _leaves(run / "checkpoint.npz")
    assert step_a == step_b == 8
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["steps"] == 8 and saved["train"]["eval_every"] == 2
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["from_step"] == 4
    assert history[0]["changes"] == {"train.steps": [6, 8], "train.eval_every": [3, 2]}
    assert history[0]["time"].endswith("+00:00")
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(8))
    assert [r["val_loss"] != "" for r in rows[4:]] == [False, True, False, True]  # every 2
    # A second resume (nothing to do, nothing changed) appends a second line.
    train(load_config(None, [*LIN, "train.steps=8", "train.eval_every=2"]), run, resume=True)
    lines = (run / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["changes"] == {}
    assert json.loads(lines[0]) == history[0]  # append-only


# --- non-finite numbers ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # 1e39 in float32
def test_a_diverging_run_stops_before_writing_the_step(tmp_path):
    # learning_rate = 1e10: finite, but the parameters are NaN after the update of step 1,
    # the step whose end the loop used to checkpoint (checkpoint_every = 2).
    out = tmp_path / "diverged"
    with pytest.raises(SimulationError) as err:
        train(load_config(None, [*LIN, "optimizer.learning_rate=1e10"]), out)
    message = str(err.value)
    assert message.startswith("step 1: the state after the update") and "\n" not in message
    assert "no checkpoint was written" in message and "Lower optimizer.learning_rate" in message
    assert not (out / "checkpoint.npz").exists()
    with open(out / "metrics.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["0"]  # the row of step 1 not written
    # The CLI: one line, exit 1 (failed numerics, not bad input). 1e39 overflows float32.
    r = _cli("train", *(f"--set={s}" for s in LIN), "--set", "optimizer.learning_rate=1e39",
             "--out", tmp_path / "cli")  # fmt: skip
    assert "step 0: the state after the update" in _one_line_error(r, code=1)
    assert not (tmp_path / "cli" / "checkpoint.npz").exists()


def test_a_non_finite_validation_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from weakgrad.tasks.mnist_task import MnistTask

    good = MnistTask.validate
    monkeypatch.setattr(  # validation at step 3 (after the checkpoint at 2) gives NaN
        MnistTask, "validate", lambda self, p, k: (float("nan"), 0.5)
    )
    out = tmp_path / "nan"
    with pytest.raises(SimulationError, match=r"step 2: the validation loss \(nan\) is not fin"
                       r".* and the last checkpoint \(step 2\) is kept"):  # fmt: skip
        train(load_config(None, [*LIN, "train.keep_best=true"]), out)
    leaves, step = _leaves(out / "checkpoint.npz")
    assert step == 2 and all(np.all(np.isfinite(x)) for x in leaves)
    assert not (out / "best.npz").exists()  # no best state of a NaN evaluation
    with open(out / "metrics.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["0", "1"]  # row of step 2 not written
    # The good checkpoint resumes.
    monkeypatch.setattr(MnistTask, "validate", good)
    assert train(load_config(None, [*LIN, "train.keep_best=true"]), out, resume=True)["steps"] == 6


def test_evaluate_and_resume_refuse_a_non_finite_checkpoint(run):
    path = run / "checkpoint.npz"
    with np.load(path) as d:
        arrays = dict(d)
    arrays["leaf_0"] = np.full_like(arrays["leaf_0"], np.nan)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ConfigError, match=r"checkpoint.npz holds non-finite numbers"):
        evaluate(run)
    r = _cli("evaluate", run)
    assert "checkpoint.npz holds non-finite numbers" in _one_line_error(r)
    with pytest.raises(ConfigError, match=r"checkpoint.npz holds non-finite numbers"):
        train(load_config(None, LIN), run, resume=True)


# --- corrupt or edited run files --------------------------------------------------------------


def _set_step(path, step):
    with np.load(path) as d:
        arrays = dict(d)
    arrays["step"] = np.asarray(step)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _drop_leaf(path):
    with np.load(path) as d:
        arrays = {k: v for k, v in d.items() if k != "leaf_1"}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda r: (r / "checkpoint.npz").write_bytes(b""), "checkpoint.npz is not a readable"),
        (
            lambda r: (r / "checkpoint.npz").write_bytes((r / "checkpoint.npz").read_bytes()[:300]),
            "checkpoint.npz is not a readable checkpoint",
        ),
        (lambda r: _drop_leaf(r / "checkpoint.npz"), "is an incomplete checkpoint (no leaf_1)"),
        (
            lambda r: _set_step(r / "checkpoint.npz", 1000),
            "says step 1000, but the run (config.json) trains 6 steps",
        ),
        (lambda r: _set_step(r / "checkpoint.npz", 2), "(step 2, written at"),
        (lambda r: (r / "metrics.csv").write_text(""), "metrics.csv is empty (no header"),
        (
            lambda r: (r / "metrics.csv").write_text(
                "\n".join((r / "metrics.csv").read_text().splitlines()[1:]) + "\n"
            ),
            "metrics.csv has no valid header (its first line is '0,",
        ),
        (lambda r: (r / "metrics.csv").unlink(), "metrics.csv is missing: the run's history"),
        (
            lambda r: (r / "metrics.csv").write_text(
                "\n".join((r / "metrics.csv").read_text().splitlines()[:3]) + "\n"
            ),
            "metrics.csv has rows for 2 of the 4 steps before the checkpoint",
        ),
        (lambda r: (r / "config.json").write_bytes(b"\xff{"), "config.json is not a run's JSON"),
        (lambda r: (r / "config.json").unlink(), "config.json is missing, so --resume cannot"),
    ],
    ids=[
        "empty-ckpt",
        "truncated-ckpt",
        "incomplete-ckpt",
        "step-1000",
        "step-edited-back",
        "empty-metrics",
        "headerless-metrics",
        "deleted-metrics",
        "short-metrics",
        "binary-config-json",
        "deleted-config-json",
    ],
)
def test_a_damaged_run_is_refused_before_training(run, damage, needle):
    damage(run)
    before = _files(run)
    steps = []
    with pytest.raises(ConfigError) as err:
        train(load_config(None, LIN), run, resume=True, progress=lambda s, r: steps.append(s))
    assert needle in str(err.value), str(err.value)
    assert steps == [] and _files(run) == before  # detected before training; nothing written


def test_damaged_files_are_one_line_with_exit_2_on_the_cli(run):
    (run / "checkpoint.npz").write_bytes(b"")  # numpy's EOFError was click's "Aborted."
    assert "checkpoint.npz is not a readable checkpoint" in _one_line_error(_cli("evaluate", run))
    line = _one_line_error(_cli("train", "--resume", "--out", run))
    assert "checkpoint.npz is not a readable checkpoint" in line


# --- one writer per folder --------------------------------------------------------------------


_SECOND = """
import sys
from weakgrad.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["weakgrad", *sys.argv[1:]]
main()
"""


def test_a_second_train_into_a_running_folder_exits_2(tmp_path):
    out = tmp_path / "run"
    # The suite's compile flags, not a device count the CLI would keep.
    env = dict(os.environ, XLA_FLAGS=SUITE_XLA_FLAGS)
    train_args = ["train", *(f"--set={s}" for s in LIN)]
    first = subprocess.Popen(
        [sys.executable, "-m", "weakgrad.cli", *train_args, "--set=train.steps=1000000",
         "--set=train.eval_every=1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    # The second process imports while the first starts, then waits for the word to go.
    second = subprocess.Popen(
        [sys.executable, "-c", _SECOND, *train_args, "--out", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    watchdog = threading.Timer(60, lambda: [p.kill() for p in (first, second)])  # bounds it
    watchdog.start()
    try:
        assert second.stdout.readline().strip() == "ready"
        for line in first.stdout:  # its first evaluation: it is training, holding the lock
            if "step 1:" in line:
                break
        assert first.poll() is None, "the first run ended before training"
        _, err = second.communicate("go\n", timeout=60)
        assert second.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert f"is in use by pid {first.pid}" in lines[0] and "weakgrad train" in lines[0]
        assert str(out) in lines[0] and "another --out" in lines[0]
        assert json.loads((out / ".weakgrad.lock").read_text())["pid"] == first.pid
        assert first.poll() is None  # the first run goes on
    finally:
        watchdog.cancel()
        for p in (first, second):
            p.kill()
            p.wait(timeout=60)


def test_resume_into_a_folder_without_a_run_is_refused(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    r = _cli("train", "--resume", "--set", "train.steps=2", "--out", empty)
    assert r.returncode == 2 and "holds no run to continue" in r.stderr, r.stderr
    assert sorted(p.name for p in empty.iterdir()) == []  # nothing written, no lock left


def test_a_refused_run_into_a_new_folder_leaves_no_folder(tmp_path):
    new = tmp_path / "new-run"
    r = _cli("train", "--set", "train.batch_size=100000", "--set", "train.steps=1", "--out", new)
    assert r.returncode == 2 and "train.batch_size = 100000" in r.stderr, r.stderr
    assert not new.exists()
