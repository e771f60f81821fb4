"""Exceptions for "the tool could not do what was asked".

A finding about a package (it is not trusted) is never an exception: it is an Issue in a verdict.
Exceptions are for input we cannot use at all: a malformed signature (carrying its NU code),
an unreadable config (carrying file and line), bad usage.
"""

from __future__ import annotations

from trustpolicy.codes import Code


class TrustPolicyError(Exception):
    """Base of every error trustpolicy raises on purpose. The CLI prints it as one line, exit 2."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SignatureFormatError(TrustPolicyError):
    """A package or signature that breaks the format rules; `code` is the NU30xx code."""

    def __init__(self, code: Code, message: str, *, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.code = Code(code)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.code}: {self.message}"


class SigningError(SignatureFormatError):
    """Signing refused (bad certificate, already signed, ZIP64, timestamp failure...)."""


class ConfigError(TrustPolicyError):
    """A NuGet.Config that cannot be used; names the file and, when known, the line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message, path=path)
        self.line = line

    def __str__(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}: {self.message}"
        return super().__str__()


class UsageError(TrustPolicyError):
    """Bad command-line usage or an unusable input file (exit code 2)."""
