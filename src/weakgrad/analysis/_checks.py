"""Checks the analysis settings share: each raises :class:`~weakgrad.errors.ConfigError`
naming the command-line option, before any work starts."""

from __future__ import annotations

import math
from typing import Any

from weakgrad.errors import ConfigError

SEED_MAX = 2**63 - 1


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def finite(flag: str, value: Any) -> None:
    """``value`` is a real number, not inf or nan."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    require(ok, f"{flag} must be a finite number, got {value!r}.")


def seed(value: Any, flag: str = "--seed") -> None:
    """A seed JAX and NumPy both take: an int in [0, 2**63 - 1]."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SEED_MAX
    require(ok, f"{flag} must be an int from 0 to 2**63 - 1 = {SEED_MAX}, got {value!r}.")


def at_most(flag: str, value: int | float, limit: int | float, why: str) -> None:
    require(value <= limit, f"{flag} {value} is above the limit of {limit:,}: {why}.")
