"""The one place that reads the wall clock, and the one way moments are written and read.

Everything else receives an aware datetime: the composition root reads "now" once per run.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def parse_moment(text: str) -> datetime:
    """Parse an ISO 8601 moment (--at). A value without a zone is refused: ambiguity is unsafe."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z or an offset such as +00:00")
    return value.astimezone(UTC)


def format_moment(moment: datetime, *, seconds: bool = False) -> str:
    """RFC 3339 in UTC with a Z; `seconds` drops fractions (for messages). Naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("moments must be timezone-aware")
    if seconds:
        moment = moment.replace(microsecond=0)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
