"""Run the command line in the test's own process (no interpreter start-up per call)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import NamedTuple
from unittest import mock


def _suite_xla_flags() -> str:
    """How the suite compiles (tests/conftest.py), also given to the subprocesses tests
    start: XLA's backend optimisation passes off (about 4x faster to compile) and the CPU's
    loop emitters instead of its MLIR fusion emitters (another ~40% less compile time). The
    same arithmetic up to float rounding: tests compare with tolerances or with runs
    compiled alike. XLA aborts on a flag it does not know, so the second is tried once in a
    subprocess (a jaxlib that dropped it compiles without it) and the answer is passed on to
    pytest's workers in the environment."""
    known = os.environ.get("WEAKGRAD_TEST_XLA_FLAGS")
    if known is not None:
        return known
    flags = "--xla_backend_optimization_level=0"
    extra = f"{flags} --xla_cpu_use_fusion_emitters=false"
    probe = "import jax.numpy as jnp; jnp.zeros(2).sum().block_until_ready()"
    env = dict(os.environ, XLA_FLAGS=extra, JAX_PLATFORMS="cpu")
    try:
        ok = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                            timeout=120).returncode == 0  # fmt: skip
    except subprocess.TimeoutExpired:
        ok = False
    os.environ["WEAKGRAD_TEST_XLA_FLAGS"] = extra if ok else flags
    return os.environ["WEAKGRAD_TEST_XLA_FLAGS"]


SUITE_XLA_FLAGS = _suite_xla_flags()


class CliRun(NamedTuple):
    """What a subprocess would give: unpacks as ``(returncode, stdout, stderr)``."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: object) -> CliRun:
    """``weakgrad ARGS`` in this process. Exceptions other than SystemExit propagate: an
    internal error's traceback fails the test, as it should."""
    from weakgrad.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    # main() sets XLA_FLAGS for its own process; keep it out of later subprocesses.
    with mock.patch.object(sys, "argv", ["weakgrad", *map(str, args)]), mock.patch.dict(os.environ):
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    return CliRun(code, out.getvalue(), err.getvalue())
