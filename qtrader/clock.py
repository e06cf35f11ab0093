"""UTC time, in the naive form the store keeps (every stored timestamp is UTC)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
