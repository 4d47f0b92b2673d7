"""Errors the user can act on.

Exception tree::

    WattledgerError            one line saying what happened, plus a ``hint`` saying what to do
    ├── ConfigError            a config file or WATTLEDGER_* variable is malformed or unknown
    └── DatabaseError          the warehouse cannot be reached, or its schema is not current

The CLI prints ``Error: <message>`` and ``Hint: <hint>`` on stderr and exits 1; ``--verbose``
adds the traceback. Library callers catch :class:`WattledgerError`.
"""

from __future__ import annotations


class WattledgerError(Exception):
    """An expected failure with a message for the user and a hint for the fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(WattledgerError):
    """A configuration file or environment variable is malformed, unknown or invalid."""


class DatabaseError(WattledgerError):
    """The warehouse is unreachable, or its schema does not match this version."""
