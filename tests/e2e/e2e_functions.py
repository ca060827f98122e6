"""Lambda functions served to the end-to-end servers with ``--functions``.

A Task with ``Resource: arn:aws:lambda:<region>:<account>:function:<name>`` runs the function
of that name here as ``handler(event, context)``.
"""

import os
import pathlib
import time

# A gated function never waits longer than this: a test that forgets to open its gate fails
# on its own instead of holding the server's virtual clock for the rest of the session.
GATE_LIMIT_SECONDS = 30.0


class PaymentDeclined(Exception):
    pass


class FirstAttemptFails(Exception):
    pass


def echo(event, context):
    return event


def decline(event, context):
    raise PaymentDeclined(event.get("message", "card refused"))


def gate(event, context):
    """Returns ``event`` once the file ``event["gate"]`` exists: the test decides when."""
    path = pathlib.Path(event["gate"])
    deadline = time.monotonic() + GATE_LIMIT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {path} was never opened")
        time.sleep(0.01)
    return event


def fail_once(event, context):
    """Fails while the file ``event["marker"]`` does not exist (creating it), then succeeds."""
    marker = pathlib.Path(event["marker"])
    if not marker.exists():
        marker.touch()
        raise FirstAttemptFails("the first attempt fails")
    return {"attempt": "second"}


def journal(event, context):
    """Appends one line to ``event["journal"]`` (fsynced) per call, then returns ``event``."""
    with open(event["journal"], "a", encoding="utf-8") as out:
        out.write(f"{event['id']}\n")
        out.flush()
        os.fsync(out.fileno())
    return event
