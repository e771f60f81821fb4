"""How much a command prints: `-v|--verbosity quiet|minimal|normal|detailed|diagnostic` and `-q`.

Verbosity changes the human text only. A document the user asked for (JSON, SARIF, XML, `config
show`, `inspect`) is the same at every level, and the exit code never depends on it.
"""

from __future__ import annotations

import enum

__all__ = ["Verbosity"]


class Verbosity(enum.IntEnum):
    """Ordered: a level prints everything the levels below it print."""

    QUIET = 0  # errors only: failing packages in one line each, nothing when all is well
    MINIMAL = 1  # the outcome: summary line, failing packages with cause and fix, suggestions
    NORMAL = 2  # the default
    DETAILED = 3  # every finding's message
    DIAGNOSTIC = 4  # and each finding's detail, the settings, tracebacks of internal errors

    @classmethod
    def parse(cls, text: str) -> Verbosity:
        """A level by name or by its first letter, as dotnet accepts (q, m, n, d, diag)."""
        value = text.strip().lower()
        for level in cls:
            if level.name.lower() == value:
                return level
        aliases = {"q": cls.QUIET, "m": cls.MINIMAL, "n": cls.NORMAL, "d": cls.DETAILED, "diag": cls.DIAGNOSTIC}
        if value in aliases:
            return aliases[value]
        raise ValueError(f"{text!r} is not one of quiet, minimal, normal, detailed, diagnostic")
