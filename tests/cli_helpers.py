"""Run the command line in the test's own process (no interpreter start-up per call)."""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import NamedTuple
from unittest import mock

# How the suite compiles (tests/conftest.py), also given to the subprocesses tests start:
# XLA's backend optimisation passes off (about 4x faster to compile) and the CPU's older
# loop emitters instead of its MLIR fusion emitters (another ~40% less compile time). Same
# arithmetic up to float rounding: tests compare with tolerances or with runs compiled alike.
SUITE_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"


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
