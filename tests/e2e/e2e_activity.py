"""Activity handlers served by ``flowstate worker`` subprocesses in the end-to-end tests."""

import time


class OutOfBoxes(Exception):
    pass


def pack(event, context):
    if event.get("boxes") == 0:
        raise OutOfBoxes("no boxes left")
    return {"packed": event["item"], "by": context.worker_name}


def slow_pack(event, context):
    """Takes ``event["seconds"]``: longer than the state's HeartbeatSeconds."""
    time.sleep(event["seconds"])
    return {"packed": event["item"]}
