"""Options `verify` and `check` share: config, trust store, revocation, time."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trustpolicy._internal import clock
from trustpolicy.errors import UsageError

if TYPE_CHECKING:
    from trustpolicy.context import TrustOptions


def add_trust_options(parser: argparse.ArgumentParser, *, configfile: bool = True) -> None:
    """The options that say what to trust; `configfile=False` for a command whose --configfile means
    something else (init's is the file it writes)."""
    if configfile:
        parser.add_argument("--configfile", metavar="FILE",
                            help="use this NuGet.Config alone (default: NuGet's hierarchy of config files)")
    parser.add_argument("--trust-store", metavar="PEM", action="append", default=[],
                        help="trust only the roots in this PEM file (repeatable; replaces the bundled .NET SDK roots)")
    parser.add_argument("--extra-roots", metavar="PEM", action="append", default=[],
                        help="trust the roots in this PEM file as well (repeatable)")
    parser.add_argument("--revocation", choices=("online", "offline", "off"), default="online",
                        help="certificate revocation checking (default: online, bounded by timeouts, as NuGet)")
    parser.add_argument("--revocation-data", metavar="DIR", action="append", default=[],
                        help="folder of CRLs and OCSP responses (DER or PEM) to use (repeatable)")
    parser.add_argument("--at", metavar="TIME",
                        help="judge as of this ISO 8601 moment instead of now, e.g. 2026-01-31T12:00:00Z")


def trust_options(args: argparse.Namespace, **extra: Any) -> TrustOptions:
    """The TrustOptions the shared options describe (`extra`: a command's own fields, e.g. mode)."""
    from trustpolicy.context import TrustOptions  # deferred: keeps --help fast

    fields: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value for key, value in extra.items()}
    return TrustOptions(
        configfile=fields.pop("configfile") if "configfile" in fields else args.configfile,
        trust_store=tuple(args.trust_store),
        extra_roots=tuple(args.extra_roots),
        revocation=args.revocation,
        revocation_data=tuple(args.revocation_data),
        at=parse_at(args.at),
        **fields,
    )


def parse_at(text: str | None) -> datetime | None:
    """--at as an aware datetime (None when not given)."""
    if text is None:
        return None
    try:
        return clock.parse_moment(text)
    except ValueError as error:
        raise UsageError(f"--at: {error}") from None
