"""Opaque, tamper-evident pagination tokens (keyset, not offsets).

A token carries the sort key of the last item returned and a fingerprint of the query it
belongs to, under a keyed BLAKE2b checksum. The key is fixed, not secret: this detects garbage,
truncation and a token replayed against another query (AWS answers those with InvalidToken);
it is not authentication, and the key values it exposes are ones the caller has already seen.
Tokens survive restarts and work on every node sharing the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from flowstate.storage.errors import InvalidToken

__all__ = ["decode_token", "encode_token"]

_KEY = b"flowstate.storage.tokens.v1"
_DIGEST_SIZE = 12


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(body, key=_KEY, digest_size=_DIGEST_SIZE).digest()


def encode_token(query: list[Any], key: list[Any]) -> str:
    body = json.dumps([query, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_checksum(body) + body).decode().rstrip("=")


def decode_token(token: str, query: list[Any]) -> list[Any]:
    """The sort key in ``token``, or InvalidToken if it is not one of ours for ``query``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"Invalid pagination token: {_show(token)} is not a token") from None
    digest, body = raw[:_DIGEST_SIZE], raw[_DIGEST_SIZE:]
    if len(digest) != _DIGEST_SIZE or not hmac.compare_digest(digest, _checksum(body)):
        raise InvalidToken(f"Invalid pagination token: {_show(token)} was not issued by flowstate")
    found_query, key = json.loads(body)
    if found_query != query:
        raise InvalidToken(
            f"Invalid pagination token: {_show(token)} belongs to a different request "
            "(other arguments or order)"
        )
    return key


def _show(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:37] + "...")
