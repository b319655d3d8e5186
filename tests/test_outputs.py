"""Output folders: one writer per folder (``io.folder_lock``), outputs moved into place as a
set with a manifest written last (``io.staged_outputs``), and the analysis commands' bad input
as one line and exit 2 with the folder unchanged or complete."""

import json
import os
import subprocess
import sys
import threading

import pytest

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
