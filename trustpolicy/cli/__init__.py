"""Command line: parse arguments, call the library, render, return an exit code.

Each command lives in its own module exposing `register(subparsers)`; the parser it adds sets
`func(args) -> int`. Errors the tool raises on purpose (TrustPolicyError) print as one line and
exit 2; nothing reaches the user as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from trustpolicy import __version__
from trustpolicy.errors import TrustPolicyError

COMMAND_MODULES = ("inspect", "sign", "verify", "check", "init", "trust", "config", "lint", "serve")

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on bad usage, which is already our code for bad input."""


def build_parser(commands: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trustpolicy",
        description="Decide whether NuGet packages and restored package graphs may be trusted.",
    )
    parser.add_argument("--version", action="version", version=f"trustpolicy {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in commands:
        import_module(f"trustpolicy.cli.{name}_cmd").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Import only the command being run (the others' imports cost a warm check ~0.2 s); the full
    # list is built for top-level help and errors.
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser((command,) if command in COMMAND_MODULES else COMMAND_MODULES)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.func(args))
    except TrustPolicyError as error:
        print(f"trustpolicy: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("trustpolicy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - the last line of defence: never a traceback
        print(f"trustpolicy: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
