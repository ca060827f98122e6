"""For the drivers that run executions through a Step Functions API client (moto in-process,
flowstate over HTTP): wait for every execution to end, and check what they answered."""

from __future__ import annotations

import json
import time
from typing import Any

from harness.workloads import Workload, same_json

__all__ = ["POLL_SECONDS", "check", "wait_all"]

POLL_SECONDS = 0.001  # between rounds of DescribeExecution, the same for every API driver


def wait_all(sfn: Any, arns: list[str]) -> dict[str, Any]:
    """Poll DescribeExecution until every execution has ended; their last descriptions."""
    pending = list(arns)
    done: dict[str, Any] = {}
    while pending:
        still = []
        for arn in pending:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] == "RUNNING":
                still.append(arn)
            else:
                done[arn] = described
        pending = still
        if pending:
            time.sleep(POLL_SECONDS)
    return done


def check(work: Workload, described: dict[str, Any]) -> str | None:
    """The first wrong execution, or None when every one succeeded with the expected output."""
    for arn, row in described.items():
        if row["status"] != "SUCCEEDED":
            return f"{arn}: {row['status']} {row.get('error', '')} {row.get('cause', '')[:200]}"
        if not same_json(json.loads(row.get("output", "null")), work.expected):
            return f"{arn}: wrong output {row.get('output', '')[:200]}"
    return None
