"""Errors a user can act on. The CLI turns :class:`ConfigError` into one line and exit code 2;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration or command-line value is unknown, of the wrong type or out of range;
    the message names the field and the fix."""
