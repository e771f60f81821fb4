"""`trustpolicy inspect` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from trustpolicy.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="(not yet available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("'inspect' is not implemented yet")
