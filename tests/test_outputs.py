"""Output folders: one writer per folder (``io.folder_lock``), outputs moved into place as a
set with a manifest written last (``io.staged_outputs``), and the analysis commands' bad input
as one line and exit 2 with the folder unchanged or complete."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import run_cli

from weakgrad import io as wio
from weakgrad.errors import ConfigError

# A child that locks FOLDER when told "go" on stdin, reports "acquired" or "refused <message>"
# and, if it holds the lock, keeps it until its stdin closes.
_CHILD = r"""
import sys
from weakgrad.errors import ConfigError
from weakgrad.io import folder_lock
print("ready", flush=True)
sys.stdin.readline()
try:
    with folder_lock(sys.argv[1], what="test child"):
        print("acquired", flush=True)
        sys.stdin.read()
except ConfigError as e:
    print("refused " + str(e), flush=True)
    sys.exit(2)
"""


def _start_children(folder, n):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(n)
    ]
    # bound the whole test: a hung child is killed (and the test then fails on its output)
    watchdog = threading.Timer(60, lambda: [p.kill() for p in procs])
    watchdog.start()
    return procs, watchdog


def test_two_processes_starting_at_once_get_one_lock(tmp_path):
    folder = tmp_path / "out"
    procs, watchdog = _start_children(folder, 2)
    try:
        for p in procs:  # both imported and waiting
            assert p.stdout.readline().strip() == "ready"
        for p in procs:  # release both as close together as two writes go
            p.stdin.write("go\n")
        for p in procs:
            p.stdin.flush()
        lines = [p.stdout.readline().strip() for p in procs]
        assert sorted(line.split()[0] for line in lines) == ["acquired", "refused"], lines
        holder = procs[[line.startswith("acquired") for line in lines].index(True)]
        refused = next(line for line in lines if line.startswith("refused"))
        # the message names the folder, the owner and the fix
        assert str(folder) in refused and f"pid {holder.pid}" in refused
        assert "test child" in refused and "--out" in refused and ".weakgrad.lock" in refused
        owner = json.loads((folder / ".weakgrad.lock").read_text())
        assert owner["pid"] == holder.pid and owner["what"] == "test child"
        loser = procs[1 - procs.index(holder)]
        assert loser.wait(timeout=30) == 2
        assert (folder / ".weakgrad.lock").exists()  # the loser did not remove the holder's lock
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        assert not (folder / ".weakgrad.lock").exists()  # released
    finally:
        watchdog.cancel()
        for p in procs:
            p.kill()
            p.wait(timeout=30)


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(timeout=30)
    return p.pid  # reaped: no process has this pid (barring reuse within microseconds)


def test_a_stale_lock_of_a_dead_process_is_replaced(tmp_path):
    import socket

    pid = _dead_pid()
    lock = tmp_path / ".weakgrad.lock"
    stale = {"pid": pid, "host": socket.gethostname(), "what": "killed run", "started": "x"}
    lock.write_text(json.dumps(stale))
    with wio.folder_lock(tmp_path, what="new run") as held:
        assert held == lock
        owner = json.loads(lock.read_text())
        assert owner["pid"] == os.getpid() and owner["what"] == "new run"
    assert not lock.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing left aside


def test_a_live_lock_or_another_hosts_lock_is_refused_and_kept(tmp_path):
    import socket

    lock = tmp_path / ".weakgrad.lock"
    for owner in (
        {"pid": os.getppid(), "host": socket.gethostname(), "what": "live", "started": "x"},
        {"pid": 1, "host": "elsewhere.invalid", "what": "remote", "started": "x"},
    ):
        lock.write_text(json.dumps(owner))
        with pytest.raises(ConfigError, match="is in use by pid") as e:
            with wio.folder_lock(tmp_path, what="second"):
                pass
        assert owner["host"] in str(e.value) and owner["what"] in str(e.value)
        assert json.loads(lock.read_text()) == owner  # not touched


def test_the_lock_is_released_on_an_exception_and_nests_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with wio.folder_lock(tmp_path, what="a"):
            with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
                with wio.folder_lock(tmp_path, what="b"):
                    pass
            raise RuntimeError("boom")
    assert not (tmp_path / ".weakgrad.lock").exists()


# ---------------------------------------------------------------------------------------------
# Staged outputs and the manifest


def _listing(folder):
    """Every file under ``folder`` (hidden ones too) with its SHA-256."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_staged_outputs_move_in_as_a_set_with_the_manifest_last(tmp_path):
    with wio.staged_outputs(tmp_path, command="test") as d:
        assert d.parent == tmp_path and d.name.startswith(".staging-")
        wio.write_text(d / "a.txt", "one")
        wio.write_text(d / "b.txt", "two")
        assert not (tmp_path / "a.txt").exists()  # nothing in place before the end
    manifest = wio.check_manifest(tmp_path)
    assert set(manifest["files"]) == {"a.txt", "b.txt"} and manifest["command"] == "test"
    assert manifest["files"]["a.txt"]["bytes"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "manifest.json"]
    before = _listing(tmp_path)
    # a failure half-way: nothing moves, the staging folder goes, the old set stays
    with pytest.raises(RuntimeError, match="half-way"):
        with wio.staged_outputs(tmp_path, command="test") as d:
            wio.write_text(d / "a.txt", "new one")
            raise RuntimeError("half-way")
    assert _listing(tmp_path) == before
    # a full disk while writing: one line (ConfigError), old outputs intact
    with pytest.raises(ConfigError, match="No space left on device.*unchanged"):
        with wio.staged_outputs(tmp_path, command="test") as d:
            raise OSError(28, "No space left on device")
    assert _listing(tmp_path) == before
    (tmp_path / "b.txt").write_text("edited")
    with pytest.raises(ValueError, match="b.txt differs from the manifest"):
        wio.check_manifest(tmp_path)


def test_writable_folder_names_the_option(tmp_path):
    from unittest import mock

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match=f"--out {f} is a file"):
        wio.writable_folder(f)
    with pytest.raises(ConfigError, match="lies under a file"):
        wio.writable_folder(f / "sub")
    with mock.patch("tempfile.mkstemp", side_effect=PermissionError(13, "Permission denied")):
        with pytest.raises(ConfigError, match="is not writable .Permission denied"):
            wio.writable_folder(tmp_path / "ro", option="--dir")
    assert wio.writable_folder(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert list((tmp_path / "new" / "deep").iterdir()) == []  # the probe is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_refused_before_the_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            wio.writable_folder(ro)
    finally:
        ro.chmod(0o700)


def test_the_lock_holder_removes_staging_folders_of_killed_runs(tmp_path):
    (tmp_path / ".staging-killed").mkdir()
    (tmp_path / ".staging-killed" / "landscape.csv").write_text("half")
    with wio.folder_lock(tmp_path, what="x"):
        assert not (tmp_path / ".staging-killed").exists()


# ---------------------------------------------------------------------------------------------
# The analysis commands in-process (see tests/test_cli.py): exit 0 or 2, one line, the folder
# unchanged or complete.


_cli = run_cli


_SMALL = ("landscape", "--points", "5", "--tau-ms", "5")


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A complete small landscape run: the folder hostile commands write over."""
    out = tmp_path_factory.mktemp("earlier") / "L"
    code, _, err = _cli(*_SMALL, "--out", out)
    assert code == 0, err
    wio.check_manifest(out)
    return out


@pytest.fixture
def folder(earlier_run, tmp_path):
    import shutil

    out = tmp_path / "L"
    shutil.copytree(earlier_run, out)
    return out


def _inputs(tmp_path):
    """Hostile files for --landscape and --out."""
    header = "w,current,loss_mean,loss_sem,spikes_mean\n"
    files = {
        "header": header,
        "empty": "",
        "one": header + "1,2,3,4,5\n",
        "nan": header + "0,0,1,0,0\n1,0,nan,0,0\n2,0,1,0,0\n",
        "cols": "a,b\n1,2\n3,4\n5,6\n",
        "good": header + "".join(f"{w},0,{(w - 1) ** 2},0,0\n" for w in (0, 0.5, 1, 1.5, 2)),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    paths["bin"] = tmp_path / "bin.csv"
    paths["bin"].write_bytes(b"\x00\xff\xfe\x80")
    paths["file"] = tmp_path / "a-file"
    paths["file"].write_text("not a folder")
    paths["under"] = paths["file"] / "sub"
    return paths


# (arguments, what the one line must say); {name} is a path of _inputs, {out} the folder of
# an earlier run. Each case is refused before any simulation.
HOSTILE = [
    # landscape (issue 14: 4, 5, 6)
    ("landscape --tau-ms inf", "--tau-ms must be a finite number"),
    ("landscape --tau-ms nan", "--tau-ms must be a finite number"),
    ("landscape --dt-ms inf", "--dt-ms must be a finite number"),
    ("landscape --dt-ms 0", "--dt-ms must be > 0"),
    ("landscape --seed 99999999999999999999", "--seed must be an int from 0 to 2**63 - 1"),
    ("landscape --seed -1", "--seed must be an int from 0"),
    ("landscape --mollify inf", "--mollify must be a finite number"),
    ("landscape --mollify nan", "--mollify must be a finite number"),
    ("landscape --points 7 --mollify 100", "--mollify 100.0 is wider than half the range"),
    ("landscape --mollify -1", "--mollify must be a positive half-width"),
    ("landscape --points 0", "--points must be >= 2"),
    ("landscape --points 1000000000000", "--points 1000000000000 is above the limit"),
    ("landscape --trials 1000000000", "--trials 1000000000 is above the limit"),
    ("landscape --trials -2", "--trials must be >= 1"),
    ("landscape --w-min nan", "--w-min must be a finite number"),
    ("landscape --w-max inf", "--w-max must be a finite number"),
    ("landscape --zoom 0 inf", "--zoom must be a finite number"),
    ("landscape --i0 inf", "--i0 must be a finite number"),
    ("landscape --noise inf", "--noise must be a finite number"),
    ("landscape --tau-ms 1e12", "time steps per trial, above the limit"),
    ("landscape --task complete-graph --neurons 100000", "--neurons 100000 is above the limit"),
    ("landscape --task complete-graph --2d --neurons 2 --points 5000", "--points squared"),
    ("landscape --points 5 --out {file}", "is a file, not a folder"),
    ("landscape --points 5 --out {under}", "lies under a file"),
    # descend
    ("descend --width inf", "--width must be a finite number"),
    ("descend --eta nan", "--eta must be a finite number"),
    ("descend --w0 inf", "--w0 must be a finite number"),
    ("descend --steps 1000000000", "--steps 1000000000 is above the limit of 1,000,000"),
    ("descend --steps 0", "--steps must be >= 1"),
    ("descend --growth 2 --steps 5000", "overflows"),
    ("descend --seed -3", "--seed must be an int from 0"),
    ("descend --points 1000000000", "--points 1000000000 is above the limit"),
    ("descend --landscape {header}", "holds 0 data rows"),
    ("descend --landscape {empty}", "is not a landscape CSV"),
    ("descend --landscape {bin}", "is not a landscape CSV"),
    ("descend --landscape {cols}", "is not a landscape CSV"),
    ("descend --landscape {one}", "holds 1 data row"),
    ("descend --landscape {nan}", "holds non-finite w or loss_mean values"),
    ("descend --landscape {good} --w0 7", "--w0 7.0 lies outside the curve's range [0, 2]"),
    ("descend --landscape {good} --w0 1 --method mollified --width 5", "wider than half"),
    ("descend --landscape {out}/missing.csv", "does not exist"),
    ("descend --out {under}", "lies under a file"),
    # gradcheck
    ("gradcheck --dt-ms 0", "--dt-ms (0.0) must be"),
    ("gradcheck --dt-ms inf", "--dt-ms must be a finite number"),
    ("gradcheck --duration-ms inf", "--duration-ms must be a finite number"),
    ("gradcheck --sigmas inf", "--sigmas must list finite numbers"),
    ("gradcheck --sigmas nan", "--sigmas must list positive floats"),
    ("gradcheck --sigmas 0.1,-1", "--sigmas must list positive floats"),
    ("gradcheck --samples 10000000", "--samples 10000000 is above the limit"),
    ("gradcheck --repeats 100000", "--repeats 100000 is above the limit"),
    ("gradcheck --seed 9223372036854775808", "--seed must be an int from 0"),
    ("gradcheck --model hh-short --duration-ms 1e9", "time steps, above the limit"),
    ("gradcheck --out {file}", "is a file, not a folder"),
    # scorecheck
    ("scorecheck --points 100000000", "--points 100000000 is above the limit of 1,000,000"),
    ("scorecheck --points 100000 --samples 1000", "draws, above the limit"),
    ("scorecheck --sigma inf", "--sigma must be a finite number"),
    ("scorecheck --sigma nan", "--sigma must be a finite number"),
    ("scorecheck --sigma 0", "--sigma must be > 0"),
    ("scorecheck --seed -1", "--seed must be an int from 0"),
    ("scorecheck --samples inf", "--samples must be comma-separated ints"),
    ("scorecheck --samples 1", "--samples must list ints >= 2"),
    ("scorecheck --out {under}", "lies under a file"),
]


@pytest.mark.parametrize(("args", "needle"), HOSTILE, ids=[a for a, _ in HOSTILE])
def test_hostile_input_is_one_line_exit_2_and_the_folder_is_unchanged(
    folder, tmp_path, args, needle
):
    paths = {k: str(v) for k, v in _inputs(tmp_path).items()} | {"out": str(folder)}
    argv = [a.format(**paths) for a in args.split()]
    if "--out" not in argv:
        argv += ["--out", str(folder)]
    before = _listing(folder)
    code, _, err = _cli(*argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert _listing(folder) == before  # nothing written, no lock or staging left


# Wrong types, unknown options and commands: Typer's own usage errors, as one line, exit 2,
# naming the option and where the help is.
@pytest.mark.parametrize(
    "args",
    [
        "landscape --points abc",
        "landscape --seed 1.5",
        "descend --steps many",
        "gradcheck --batch ten",
        "scorecheck --sigma x",
    ],
)
def test_wrong_types_are_exit_2_naming_the_option(folder, args):
    before = _listing(folder)
    code, _, err = _cli(*args.split(), "--out", folder)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"'{args.split()[1]}'" in lines[0], err
    assert f"(see weakgrad {args.split()[0]} --help)" in lines[0]
    assert _listing(folder) == before


@pytest.mark.parametrize(
    "args, needle",
    [
        ("landscape --nope", "No such option: --nope"),
        ("frobnicate", "No such command 'frobnicate'"),
    ],
)
def test_unknown_options_and_commands_are_one_line_exit_2(args, needle):
    code, out, err = _cli(*args.split())
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0] and not out, err


def test_a_small_run_over_an_earlier_one_replaces_the_set(folder):
    # landscape then scorecheck into the same folder: each leaves a complete manifest
    code, _, err = _cli("scorecheck", "--points", "5", "--samples", "2,3", "--out", folder)
    assert code == 0, err
    manifest = wio.check_manifest(folder)
    assert manifest["command"] == "scorecheck"
    assert set(manifest["files"]) == {"scorecheck.csv", "scorecheck.png", "scorecheck.json"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_scorecheck_sigma_that_overflows_is_refused_not_written_as_nan(folder):
    before = _listing(folder)
    code, _, err = _cli("scorecheck", "--points", "5", "--samples", "2", "--sigma", "1e200",
                        "--out", folder)  # fmt: skip
    assert code == 2 and "--sigma 1e+200 overflows the smoothed loss" in err, err
    assert _listing(folder) == before


def test_a_second_landscape_into_a_busy_folder_is_refused(folder):
    # issue 14, 3: another process (a child holding the lock) writes the folder
    procs, watchdog = _start_children(folder, 1)
    try:
        p = procs[0]
        assert p.stdout.readline().strip() == "ready"
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "acquired"
        before = _listing(folder)
        code, _, err = _cli(*_SMALL, "--out", folder)
        assert code == 2 and f"is in use by pid {p.pid}" in err and "test child" in err, err
        assert len(err.strip().splitlines()) == 1
        assert _listing(folder) == before
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        watchdog.cancel()
        procs[0].kill()
        procs[0].wait(timeout=30)
    code, _, err = _cli(*_SMALL, "--out", folder)  # free again
    assert code == 0, err


def test_a_landscape_failing_while_saving_leaves_the_earlier_run_intact(folder):
    # issue 14, 4: the CSV must not be replaced while the JSON and figure stay the old run's
    from unittest import mock

    before = _listing(folder)
    with mock.patch("weakgrad.plots.plot_landscape", side_effect=RuntimeError("figure broke")):
        with pytest.raises(RuntimeError, match="figure broke"):
            _cli("landscape", "--points", "7", "--tau-ms", "5", "--out", folder)
    assert _listing(folder) == before  # old CSV, JSON, PNG and manifest; no staging, no lock
    full = OSError(28, "No space left on device")
    with mock.patch("weakgrad.plots.save_figure", side_effect=full):
        code, _, err = _cli("landscape", "--points", "7", "--tau-ms", "5", "--out", folder)
    assert code == 2 and "No space left on device" in err and len(err.splitlines()) == 1, err
    assert _listing(folder) == before


def test_gradcheck_batch_beyond_the_digits_available_is_refused(folder):
    # issue 14, 7: it used to record 100000 while using the digits there were
    before = _listing(folder)
    code, _, err = _cli("gradcheck", "--batch", "100000", "--out", folder)
    assert code == 2 and "--batch 100000 is more than the" in err, err
    assert "training digits available" in err and len(err.strip().splitlines()) == 1
    assert _listing(folder) == before


def test_outputs_get_the_umask_mode_not_mkstemps_private_one(tmp_path):
    old = os.umask(0o022)
    try:
        path = wio.write_text(tmp_path / "a.txt", "x")
        with wio.staged_outputs(tmp_path / "set", command="test") as stage:
            (stage / "b.csv").write_text("y")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "set" / wio.MANIFEST).stat().st_mode & 0o777 == 0o644


def test_a_full_disk_at_the_manifest_leaves_the_earlier_set(tmp_path, monkeypatch):
    """The manifest is written before anything moves: when it cannot be, the command stops
    with one line and the folder keeps the earlier run's files and manifest."""
    import errno

    folder = tmp_path / "set"
    with wio.staged_outputs(folder, command="first") as stage:
        (stage / "a.csv").write_text("old")
    before = _listing(folder)
    real = wio.write_json

    def full(path, data):
        if Path(path).name == f".{wio.MANIFEST}":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(wio, "write_json", full)
    with pytest.raises(ConfigError, match=r"No space left on device.*previous outputs"):
        with wio.staged_outputs(folder, command="second") as stage:
            (stage / "a.csv").write_text("new")
    assert _listing(folder) == before


@pytest.mark.parametrize("sigmas", ["1e300", "1e25"])
def test_gradcheck_sigmas_that_overflow_are_refused_in_one_line(folder, sigmas):
    before = _listing(folder)
    code, _, err = _cli("gradcheck", "--model", "linear", "--estimators", "node", "--samples",
                        "4", "--sigmas", sigmas, "--repeats", "1", "--out", folder)  # fmt: skip
    assert code == 2 and "--sigmas" in err.strip().splitlines()[-1], err
    assert _listing(folder) == before
