"""Command-line interface: thin over the library. Each command parses its options, calls one
library function that returns a result, saves it and prints one line. Nothing heavy is
imported at module level, so ``weakgrad --help`` answers without starting JAX."""

from __future__ import annotations

import os
import sys

import typer

from weakgrad.errors import ConfigError

app = typer.Typer(
    help="weakgrad: weak gradients and loss landscapes for Hodgkin-Huxley and spiking networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """weakgrad: weak gradients and loss landscapes for Hodgkin-Huxley and spiking networks."""


class UsageError(ConfigError):
    """Bad input from the command line: printed as one line, exit code 2."""


def _use_all_cores() -> None:
    # XLA's CPU backend runs one device per thread; expose one device per core so that
    # sweeps shard over all of them. Must happen before JAX creates its backend.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        n = os.cpu_count() or 1
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def _progress(label: str, unit: str):
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} " + unit),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _numerics_failed(e: BaseException) -> bool:
    """A blown-up simulation (SimulationError, or equinox's runtime check under jit). Both
    classes are looked up only if their modules were loaded: nothing else raises them, and
    importing them would start JAX for every command."""
    sim, eqx = sys.modules.get("weakgrad.sim.network"), sys.modules.get("equinox")
    return (sim is not None and isinstance(e, sim.SimulationError)) or (
        eqx is not None and isinstance(e, eqx.EquinoxRuntimeError)
    )


def main() -> None:
    """Entry point: bad user input (ConfigError) is one line and exit 2; failed numerics one
    line and exit 1; anything else is a bug and keeps its traceback (exit 1)."""
    _use_all_cores()
    # Typer's (click's) own usage errors: a wrong type, an unknown option or command. Taken
    # from the public BadParameter's bases, whichever click Typer ships with.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        code = app(standalone_mode=False, prog_name="weakgrad")
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except usage_error as e:
        if not sys.argv[1:]:  # no arguments: Typer has printed the help
            sys.exit(0)
        path = e.ctx.command_path if e.ctx is not None else "weakgrad"
        typer.echo(f"error: {e.format_message()} (see {path} --help)", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted.", err=True)
        sys.exit(1)
    except Exception as e:
        if not _numerics_failed(e):
            raise
        lines = str(e).strip().splitlines()
        line = next((m for m in lines if "blew up" in m), lines[0] if lines else repr(e))
        typer.echo(f"error: {line.strip()}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


# Commands register themselves on `app` when their module is imported.
from weakgrad.cli import analysis, reproduce, train  # noqa: E402, F401

if __name__ == "__main__":
    main()
