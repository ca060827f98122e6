"""Task tokens (``$$.Task.Token``): opaque to callers, self-describing to flowstate.

A token names the execution and the task attempt it belongs to, plus a random part drawn
from the execution's entropy, so the service can tell a token that never was (AWS
``InvalidToken``) from one whose task has ended (``TaskTimedOut``) without keeping every
token ever issued.
"""

from __future__ import annotations

import base64
import binascii
import json

__all__ = ["make_task_token", "parse_task_token"]

_VERSION = 1


def make_task_token(execution_arn: str, task_id: str, nonce: str) -> str:
    raw = json.dumps([_VERSION, execution_arn, task_id, nonce], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_task_token(token: str) -> tuple[str, str] | None:
    """(execution ARN, task id), or None for a token flowstate did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or value[0] != _VERSION
        or not all(isinstance(part, str) for part in value[1:])
    ):
        return None
    return value[1], value[2]
