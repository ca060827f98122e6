"""How a Task's resource ARN is classified (history event names, the region they show)."""

from __future__ import annotations

from flowstate.interpreter.tasks import resource_kind


def test_an_arn_without_a_region_takes_each_executions_region() -> None:
    invoke = "arn:aws:states:::lambda:invoke"
    east = resource_kind(invoke, "us-east-1")
    west = resource_kind(invoke, "eu-west-1")
    assert (east.family, east.resource, east.resource_type) == ("service", "invoke", "lambda")
    assert (east.region, west.region) == ("us-east-1", "eu-west-1")
    assert resource_kind(invoke, "us-east-1") is east  # (kept)


def test_an_arn_with_a_region_keeps_its_own() -> None:
    function = "arn:aws:lambda:ap-south-1:123456789012:function:work"
    kind = resource_kind(function, "us-east-1")
    assert (kind.family, kind.region) == ("lambda", "ap-south-1")
    assert resource_kind(function, "eu-west-1").region == "ap-south-1"
    token = resource_kind("arn:aws:states:::sqs:sendMessage.waitForTaskToken", "us-east-1")
    assert token.token and token.resource_type == "sqs"
