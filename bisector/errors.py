"""Every failure bisector raises on purpose derives from BisectorError.

Exceptions carry data and a one-line message that says what to do; they never
carry exit codes. The CLI maps classes to exit codes (UsageError -> 2,
ProbeFailedAtEndpoint -> 4).
"""

from __future__ import annotations


class BisectorError(Exception):
    """Root of bisector's own errors. str(error) is the one-line message."""


class UsageError(BisectorError):
    """Bad input from the user: a revision, an option, a probe that breaks the protocol."""


class BudgetTooSmall(UsageError):
    """--max-runs leaves too few runs to attribute; `needed` is the least that would do."""

    def __init__(self, message: str, needed: int) -> None:
        super().__init__(message)
        self.needed = needed


class NotARepository(UsageError):
    pass


class UnknownRevision(UsageError):
    def __init__(self, rev: str) -> None:
        super().__init__(f"unknown revision {rev!r}: check the name with `git rev-parse {rev}`")
        self.rev = rev


class GitError(BisectorError):
    """A git command failed in a way that is not the user's input."""


class ProbeProtocolError(UsageError):
    """The probe ran but broke the protocol: malformed result, missing metric, pin ignored."""


class ProbeFailedAtEndpoint(BisectorError):
    """The probe cannot measure the good or the bad endpoint, so there is nothing to bisect."""

    def __init__(self, message: str, output_tail: str = "") -> None:
        super().__init__(message)
        self.output_tail = output_tail
        self.result: dict[str, object] | None = None  # a command's result object, if it has one


class Interrupted(BisectorError):
    """Ctrl-C or SIGTERM: the hunt stopped; finished runs are in the store."""
