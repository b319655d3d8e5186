"""The one atomic writer: a result file is either the old one or the complete new one,
never half. Every file weakgrad writes goes through :func:`atomic_path`.

The temporary file sits beside the target (same filesystem, so the rename is atomic) and has
a unique name, so two writers of the same file never share a temporary: the last rename wins
and the file is always one writer's complete output.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_path",
    "folder_lock",
    "write_csv",
    "write_json",
    "write_npz",
    "write_text",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` with the same suffix; when the block ends
    without an error, flush it to disk and rename it onto ``path``; on an error remove it
    and leave ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fmt(v: Any) -> Any:
    return f"{v:.9g}" if isinstance(v, float) else v


def write_csv(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Write ``rows`` under ``header`` (floats with 9 significant digits)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_fmt(v) for v in row])
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """``np.savez`` of ``arrays`` (the file keeps the name ``path``, ``.npz`` included)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


_LOCK_NAME = ".weakgrad.lock"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _read_lock(lock: Path) -> dict | None:
    """The lock's JSON, ``{}`` if it is unreadable (being written, or corrupt), ``None`` if
    it is gone."""
    try:
        text = lock.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _owner_text(owner: dict) -> str:
    what = owner.get("what", "?")
    return (
        f"pid {owner.get('pid', '?')} on {owner.get('host', '?')} ({what}, started "
        f"{owner.get('started', '?')})"
    )


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str) -> Iterator[Path]:
    """One writer per folder: hold ``folder/.weakgrad.lock`` for the block.

    The lock file is created atomically (``O_CREAT | O_EXCL``: of two processes starting in
    the same instant exactly one creates it) and holds JSON ``{pid, host, what, started}``.
    If it already exists:

    - its pid is alive on this host (``os.kill(pid, 0)``; ``PermissionError`` counts as
      alive), or it belongs to another host (whose processes cannot be checked): raise
      :class:`weakgrad.errors.ConfigError` naming the folder, the owner and the fix (wait,
      choose another ``--out``, or delete the lock file if that process is gone);
    - its pid is dead on this host: it is stale (a killed run). It is moved aside by an atomic
      rename to a unique name (so of two processes breaking the same stale lock only one
      succeeds) and creation is retried with ``O_EXCL``;
    - it is empty or unreadable JSON: another process may be writing it this instant, so it is
      treated as held, unless it is older than a minute (then stale).

    ``folder`` is created if needed. The lock is removed when the block ends, also on an
    exception (a ``kill -9`` leaves it behind: the next run finds it stale). Yields the lock
    file's path. ``what`` says who holds it (e.g. ``"weakgrad landscape"``)."""
    import socket
    import time
    import uuid

    from weakgrad.errors import ConfigError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / _LOCK_NAME
    host = socket.gethostname()
    me = {
        "pid": os.getpid(),
        "host": host,
        "what": what,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    payload = (json.dumps(me) + "\n").encode()
    for _ in range(20):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(lock)
            if owner is None:  # released between our open and our read: try again
                continue
            pid = owner.get("pid")
            stale = False
            if not owner:
                try:
                    stale = time.time() - lock.stat().st_mtime > 60
                except FileNotFoundError:
                    continue
                if not stale:
                    raise ConfigError(
                        f"the folder {folder} is locked by another weakgrad process (lock "
                        f"file {lock} is being written or is unreadable); wait for it, choose "
                        f"another --out, or delete {lock} if no weakgrad process uses it."
                    ) from None
            elif owner.get("host") == host and isinstance(pid, int) and not _pid_alive(pid):
                stale = True
            if not stale:
                raise ConfigError(
                    f"the folder {folder} is in use by {_owner_text(owner)}; one process "
                    f"writes a folder at a time: wait for it to finish, choose another --out, "
                    f"or delete {lock} if that process is gone."
                ) from None
            aside = folder / f"{_LOCK_NAME}.stale-{uuid.uuid4().hex}"
            try:
                os.rename(lock, aside)
            except FileNotFoundError:
                continue
            # The file moved aside may be a fresh lock another process created after our read;
            # if so, put it back (atomically, only if the name is free) and refuse.
            moved = _read_lock(aside)
            if moved != owner and moved:
                try:
                    os.link(aside, lock)
                except FileExistsError:
                    pass
                aside.unlink(missing_ok=True)
                raise ConfigError(
                    f"the folder {folder} is in use by {_owner_text(moved)}; wait for it to "
                    f"finish, choose another --out, or delete {lock} if that process is gone."
                ) from None
            aside.unlink(missing_ok=True)
            continue
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        break
    else:  # pragma: no cover - only under a storm of lock breaking
        raise ConfigError(f"could not lock the folder {folder}; try again.")
    try:
        yield lock
    finally:
        if _read_lock(lock) == me:
            lock.unlink(missing_ok=True)
