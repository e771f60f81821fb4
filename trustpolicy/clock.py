"""The one place that reads the wall clock. Everything else receives an aware datetime."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def parse_moment(text: str) -> datetime:
    """Parse an ISO 8601 moment (--at). A value without a zone is refused: ambiguity is unsafe."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z or an offset such as +00:00")
    return value.astimezone(timezone.utc)
