"""Retry and Catch decisions: which retrier or catcher matches, and how long to back off."""

from __future__ import annotations

from collections.abc import Sequence

from flowstate.asl import errors
from flowstate.asl.model import Catcher, Retrier

__all__ = ["backoff_seconds", "find_catcher", "find_retrier", "matches_error"]

# AWS: "A States.Runtime error is not retriable" and States.ALL does not catch it, nor
# States.DataLimitExceeded ("a terminal error that can't be caught by States.ALL"); only
# DataLimitExceeded can still be handled when a retrier or catcher names it.
_NOT_CAUGHT_BY_ALL = frozenset({errors.RUNTIME, errors.DATA_LIMIT_EXCEEDED})
_NEVER_HANDLED = frozenset({errors.RUNTIME})


def matches_error(error_equals: Sequence[str], error: str) -> bool:
    if error in _NEVER_HANDLED:
        return False
    for name in error_equals:
        if name == error:
            return True
        if name == errors.ALL and error not in _NOT_CAUGHT_BY_ALL:
            return True
        # AWS: States.TaskFailed matches every error of a Task except States.Timeout
        # (documented in "Error names").
        if (
            name == errors.TASK_FAILED
            and error != errors.TIMEOUT
            and error not in _NOT_CAUGHT_BY_ALL
        ):
            return True
    return False


def find_retrier(retriers: Sequence[Retrier], error: str) -> int | None:
    for index, retrier in enumerate(retriers):
        if matches_error(retrier.error_equals, error):
            return index
    return None


def find_catcher(catchers: Sequence[Catcher], error: str) -> Catcher | None:
    for catcher in catchers:
        if matches_error(catcher.error_equals, error):
            return catcher
    return None


def backoff_seconds(retrier: Retrier, attempt: int, draw: float) -> float:
    """Delay before retry number ``attempt + 1`` (``attempt`` retries already made).

    ``draw`` is a uniform [0, 1) number, used only with ``JitterStrategy: FULL``.
    """
    delay = retrier.interval_seconds * (retrier.backoff_rate**attempt)
    if retrier.max_delay_seconds is not None:
        delay = min(delay, retrier.max_delay_seconds)
    if retrier.jitter_strategy == "FULL":
        delay = delay * draw
    return float(delay)
