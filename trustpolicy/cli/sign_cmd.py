"""`trustpolicy sign` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from trustpolicy.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sign", help="(not yet available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("'sign' is not implemented yet")
