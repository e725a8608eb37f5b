"""Errors and warnings that bpgen reports to users.

Every error a user can cause is a `BpgenError` with a message and, where known, an
`Origin` (file:line of the declaration that caused it). The CLI prints
`file:line: error: message` and exits 2; library users catch `BpgenError`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """Where something was declared: a file (as the user named it) and a line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class BpgenError(Exception):
    """A problem with the user's input, reported as one line."""

    def __init__(self, message: str, origin: Origin | None = None):
        super().__init__(message)
        self.message = message
        self.origin = origin

    def format(self, kind: str = "error") -> str:
        where = f"{self.origin}: " if self.origin else ""
        return f"{where}{kind}: {self.message}"

    def __str__(self) -> str:
        return self.format()


class DeclarationError(BpgenError):
    """A network declaration is malformed (bad name, undeclared symbol, ...)."""


class CompileError(BpgenError):
    """The network is well formed but cannot be compiled (no printer, ...)."""


class LoadError(BpgenError):
    """The network file itself failed (syntax error, exception, no network)."""


class OutputError(BpgenError):
    """Generated files cannot be written, or would overwrite hand edits."""


@dataclass(frozen=True)
class Diagnostic:
    """A non-fatal diagnostic, printed as `file:line: warning: message`."""

    message: str
    origin: Origin | None = None

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        return f"{where}warning: {self.message}"
