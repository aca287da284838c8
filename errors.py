"""User-facing errors: one line, what and where, exit code 2 from the CLI."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input (a file, a flag, a config), not by a bug.

    The CLI prints ``str(error)`` on one line and exits with code 2, without a traceback.
    """


class WorkloadError(UserError):
    """A workload file or dump that breaks the specification (mallocgame.md section 1)."""


class SolutionError(UserError):
    """A solution file that is malformed or does not match its workload."""


def where(source: str | None, field: str | None, message: str) -> str:
    """Format ``source: field: message`` leaving out the parts that are unknown."""
    parts = [p for p in (source, field) if p]
    return ": ".join(parts + [message])
