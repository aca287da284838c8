"""User-facing errors: one line, what and where, exit code 2 from the CLI."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input (a file, a flag, a config), not by a bug.

    The CLI prints ``str(error)`` on one line and exits with code 2, without a traceback.
    """


class ArgumentError(UserError):
    """A library function's argument out of range; it names the argument, not a flag.

    ``str(error)`` reads ``"time_limit must be > 0 (got 0)"``; the CLI, which knows its
    flags, prints ``"--time-limit must be > 0 (got 0)"`` instead (:meth:`as_flag`).
    """

    def __init__(self, argument: str, problem: str, flag: str | None = None) -> None:
        super().__init__(f"{argument} {problem}")
        self.argument, self.problem = argument, problem
        self.flag = flag or f"--{argument.replace('_', '-')}"

    def as_flag(self) -> str:
        """The message with the argument written as its command-line flag."""
        return f"{self.flag} {self.problem}"


class WorkloadError(UserError):
    """A workload file or dump that breaks the specification (mallocgame.md section 1)."""


class SolutionError(UserError):
    """A solution file that is malformed or does not match its workload."""


def check_time_limit(time_limit: float | None) -> None:
    """An :class:`ArgumentError` unless ``time_limit`` is None or positive."""
    if time_limit is not None and not time_limit > 0:
        raise ArgumentError("time_limit", f"must be > 0 (got {time_limit})")


def where(source: str | None, field: str | None, message: str) -> str:
    """Format ``source: field: message`` leaving out the parts that are unknown."""
    parts = [p for p in (source, field) if p]
    return ": ".join(parts + [message])
