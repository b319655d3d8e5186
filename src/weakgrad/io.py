"""The one atomic writer: a result file is either the old one or the complete new one,
never half. Every file weakgrad writes goes through :func:`atomic_path`.

Output folders: :func:`folder_lock` gives one writer per folder; :func:`staged_outputs` moves
a command's files into place as a set and writes ``manifest.json`` last;
:func:`writable_folder` checks a folder before the work starts.

The temporary file sits beside the target (same filesystem, so the rename is atomic) and has
a unique name, so two writers of the same file never share a temporary: the last rename wins
and the file is always one writer's complete output.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "format_cell",
    "MANIFEST",
    "atomic_path",
    "check_manifest",
    "folder_lock",
    "staged_outputs",
    "writable_folder",
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
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def format_cell(v: Any) -> Any:
    """How every CSV weakgrad writes shows a value: floats with 9 significant digits."""
    return f"{v:.9g}" if isinstance(v, float) else v


def write_csv(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Write ``rows`` under ``header`` (floats with 9 significant digits)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([format_cell(v) for v in row])
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
def folder_lock(folder: str | os.PathLike, *, what: str, option: str = "--out") -> Iterator[Path]:
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

    ``folder`` is created if needed and checked with :func:`writable_folder` (a file, a path
    under a file or a read-only folder raise ``ConfigError`` naming ``option``).
    Once held, leftover ``.staging-*`` folders of killed runs (see :func:`staged_outputs`)
    are removed. The lock is removed when the block ends, also on an exception (a ``kill -9``
    leaves it behind: the next run finds it stale). Yields the lock file's path.
    ``what`` says who holds it (e.g. ``"weakgrad landscape"``)."""
    import socket
    import uuid

    from weakgrad.errors import ConfigError

    created = not Path(folder).exists()
    folder = writable_folder(folder, option=option)
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
            if moved != owner:  # a fresh lock ({} while its owner writes it): not ours
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
    # Staging folders of killed runs (kill -9 skips their cleanup): nobody else writes here.
    for leftover in [*folder.glob(".staging-*"), *folder.glob("*/.staging-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    failed = True
    try:
        yield lock
        failed = False
    finally:
        if _read_lock(lock) == me:
            lock.unlink(missing_ok=True)
        if failed and created:
            # A command refused before it wrote anything leaves no new, empty folder behind.
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


MANIFEST = "manifest.json"
# OSErrors a user can act on (space, permissions, a read-only mount): one line, exit 2.
_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def writable_folder(folder: str | os.PathLike, *, option: str = "--out") -> Path:
    """Create ``folder`` (with its parents) if needed and check that a file can be created in
    it, before any work starts. A path that is a file, lies under a file, or is read-only
    raises :class:`~weakgrad.errors.ConfigError` naming ``option``. Returns the folder."""
    from weakgrad.errors import ConfigError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".weakgrad-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise ConfigError(
            f"{option} {folder} is a file, not a folder; choose a folder for the outputs."
        ) from None
    except NotADirectoryError:
        raise ConfigError(
            f"{option} {folder} lies under a file (a part of the path is a file, not a "
            "folder); choose another folder."
        ) from None
    except OSError as e:
        raise ConfigError(
            f"{option} {folder} is not writable ({e.strerror or e}); choose a folder you can "
            "write to."
        ) from None
    return folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def staged_outputs(folder: str | os.PathLike, *, command: str) -> Iterator[Path]:
    """Write a set of outputs into ``folder`` all or nothing.

    Yields a fresh staging folder ``folder/.staging-XXXX/``: write every output there (by
    name, e.g. ``stage / "landscape.csv"``). When the block ends without an error, the old
    ``manifest.json`` is removed, every staged file is moved onto its name in ``folder``
    (``os.replace``, atomic per file) and a new ``manifest.json`` is written last, listing the
    files with their sizes and SHA-256, ``command`` and the time. On an error the staging
    folder is removed and ``folder`` is left as it was: the previous outputs and manifest
    stay, consistent with each other. So a folder whose ``manifest.json`` matches its files
    holds one complete run; no manifest means a run was interrupted while moving files in.
    Files in ``folder`` that this run does not write are left alone (they are not in the new
    manifest). A full disk or a permission error while writing becomes a
    :class:`~weakgrad.errors.ConfigError` (one line, exit 2), the old outputs intact."""
    from weakgrad.errors import ConfigError

    folder = writable_folder(folder)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        try:
            yield stage
            staged = sorted(p for p in stage.rglob("*") if p.is_file())
            files = {
                str(p.relative_to(stage)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                for p in staged
            }
            # The manifest is written inside the staging folder too, before anything moves:
            # a full disk stops the command here, with the folder as it was. What follows
            # are renames on one filesystem, which need no space.
            manifest = stage / f".{MANIFEST}"
            write_json(
                manifest,
                {
                    "command": command,
                    "argv": list(sys.argv[1:]),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "files": files,
                },
            )
        except OSError as e:
            if e.errno not in _USER_ERRNOS:
                raise
            raise ConfigError(
                f"could not write the outputs into {folder} ({e.strerror or e}); the previous "
                "outputs there are unchanged. Free some space or choose another --out."
            ) from e
        (folder / MANIFEST).unlink(missing_ok=True)
        for p in staged:
            target = folder / p.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
        os.replace(manifest, folder / MANIFEST)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def check_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of ``folder`` if every file it lists is there with its size and SHA-256;
    raises ``ValueError`` naming the first mismatch otherwise (an interrupted run)."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"{path} is listed in the manifest but missing.")
        if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            raise ValueError(f"{path} differs from the manifest.")
    return manifest
