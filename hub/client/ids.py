"""UUIDv7 message ids (RFC 9562 section 5.7): time-ordered, 74 random bits."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

__all__ = ["uuid7"]


def uuid7(now: datetime) -> str:
    unix_ms = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand_a = secrets.randbits(12)
    rand_b = secrets.randbits(62)
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))
