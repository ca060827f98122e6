"""The configuration blocks a state machine carries: logging, tracing, encryption.

Each is normalised once, as AWS describes it back (defaults filled in), so that equal settings
compare equal for CreateStateMachine's idempotency and UpdateStateMachine's "did anything
change" (recorded AWS: an update that changes nothing keeps the revisionId).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowstate.service.errors import (
    INVALID_ENCRYPTION_CONFIGURATION,
    INVALID_LOGGING_CONFIGURATION,
    ServiceError,
)

__all__ = [
    "DEFAULT_LOGGING",
    "DEFAULT_TRACING",
    "encryption_configuration",
    "logging_configuration",
    "tracing_configuration",
]

# Recorded AWS: DescribeStateMachine of a machine created without these.
DEFAULT_LOGGING: dict[str, Any] = {"level": "OFF", "includeExecutionData": False}
DEFAULT_TRACING: dict[str, Any] = {"enabled": False}

# AWS (EncryptionConfiguration docs): data keys are reused for 300 s unless configured.
_DEFAULT_KEY_REUSE_SECONDS = 300


def logging_configuration(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The loggingConfiguration AWS stores for ``given``; InvalidLoggingConfiguration if a
    level other than OFF lacks its one destination."""
    if given is None:
        return dict(DEFAULT_LOGGING)
    level = given.get("level") or "OFF"
    normal: dict[str, Any] = {
        "level": level,
        "includeExecutionData": bool(given.get("includeExecutionData", False)),
    }
    destinations = given.get("destinations")
    # Recorded AWS: {"level": "ALL"} without destinations, or with two, is refused; an empty
    # list given with level OFF is kept and described back as [].
    if (level != "OFF" and len(destinations or ()) != 1) or len(destinations or ()) > 1:
        raise ServiceError(
            INVALID_LOGGING_CONFIGURATION,
            "Invalid Logging Configuration: Must specify exactly one Log Destination.",
        )
    if destinations is not None:
        normal["destinations"] = [dict(d) for d in destinations]
    return normal


def tracing_configuration(given: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"enabled": bool((given or {}).get("enabled", False))}


def encryption_configuration(given: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The encryptionConfiguration AWS stores for ``given`` (None when not given: the machine
    uses AWS's own key and DescribeStateMachine omits the member)."""
    if given is None:
        return None
    kind = given.get("type")
    key = given.get("kmsKeyId")
    reuse = given.get("kmsDataKeyReusePeriodSeconds")
    if kind == "CUSTOMER_MANAGED_KMS_KEY":
        if not key:
            raise ServiceError(
                INVALID_ENCRYPTION_CONFIGURATION,
                "Invalid Encryption Configuration: kmsKeyId is required when type is "
                "CUSTOMER_MANAGED_KMS_KEY.",
            )
        return {
            "kmsKeyId": key,
            "kmsDataKeyReusePeriodSeconds": _DEFAULT_KEY_REUSE_SECONDS if reuse is None else reuse,
            "type": kind,
        }
    if key is not None or reuse is not None:
        raise ServiceError(
            INVALID_ENCRYPTION_CONFIGURATION,
            f"Invalid Encryption Configuration: kmsKeyId and kmsDataKeyReusePeriodSeconds "
            f"apply only to CUSTOMER_MANAGED_KMS_KEY, not to {kind}.",
        )
    return {"type": kind}
