"""Which fields each ASL state type accepts, and the AWS limits on their values.

These tables drive the structural checks of ``asl.validate``. They follow the Amazon States
Language specification as AWS Step Functions implements it, including AWS's split of fields
between the two query languages: a field that belongs to the other language is refused with
``The QueryLanguage is set to ...`` rather than ``Field ... is not supported``.
"""

from __future__ import annotations

import re

__all__ = [
    "ACTIVITY_ARN",
    "BOTH_LANGUAGES",
    "CATCHER_FIELDS",
    "JSONATA_ONLY",
    "JSONPATH_ONLY",
    "LABEL_INVALID_CHARACTERS",
    "LABEL_MAX_LENGTH",
    "MACHINE_FIELDS",
    "MAX_DEFINITION_BYTES",
    "MAX_STATE_NAME_LENGTH",
    "OPTIMIZED_INTEGRATIONS",
    "RETRIER_FIELDS",
    "STATE_FIELDS",
    "STATE_TYPES",
    "TASK_RESOURCE",
]

MAX_DEFINITION_BYTES = 1_048_576
MAX_STATE_NAME_LENGTH = 80
# AWS: a Map Label is at most 40 characters and follows the naming rules of resource names.
LABEL_MAX_LENGTH = 40
LABEL_INVALID_CHARACTERS = frozenset(
    ' <>{}[]?*"#%\\^|~`$&,;:/'
    + "".join(chr(c) for c in range(0x00, 0x20))
    + "".join(chr(c) for c in range(0x7F, 0xA0))
)

STATE_TYPES = ("Choice", "Fail", "Map", "Parallel", "Pass", "Succeed", "Task", "Wait")

# Fields every state type accepts, whatever its query language.
_COMMON = frozenset({"Type", "Comment", "QueryLanguage"})

# Per state type: fields valid in both query languages.
BOTH_LANGUAGES: dict[str, frozenset[str]] = {
    "Pass": _COMMON | {"Next", "End", "Assign"},
    "Task": _COMMON
    | {
        "Next",
        "End",
        "Assign",
        "Resource",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "HeartbeatSeconds",
        "Credentials",
    },
    "Choice": _COMMON | {"Choices", "Default", "Assign"},
    "Wait": _COMMON | {"Next", "End", "Assign", "Seconds", "Timestamp"},
    "Succeed": _COMMON,
    "Fail": _COMMON | {"Error", "Cause"},
    "Parallel": _COMMON | {"Next", "End", "Assign", "Branches", "Retry", "Catch"},
    "Map": _COMMON
    | {
        "Next",
        "End",
        "Assign",
        "Iterator",
        "ItemProcessor",
        "ItemSelector",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "MaxConcurrency",
        "ToleratedFailureCount",
        "ToleratedFailurePercentage",
        "Label",
        "Retry",
        "Catch",
    },
}

# Per state type: fields only a JSONPath state may carry.
JSONPATH_ONLY: dict[str, frozenset[str]] = {
    "Pass": frozenset({"InputPath", "OutputPath", "Parameters", "ResultPath", "Result"}),
    "Task": frozenset(
        {
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "TimeoutSecondsPath",
            "HeartbeatSecondsPath",
        }
    ),
    "Choice": frozenset({"InputPath", "OutputPath"}),
    "Wait": frozenset({"InputPath", "OutputPath", "SecondsPath", "TimestampPath"}),
    "Succeed": frozenset({"InputPath", "OutputPath"}),
    "Fail": frozenset({"ErrorPath", "CausePath"}),
    "Parallel": frozenset(
        {"InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath"}
    ),
    "Map": frozenset(
        {
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "ItemsPath",
            "MaxConcurrencyPath",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
        }
    ),
}

# Per state type: fields only a JSONata state may carry.
JSONATA_ONLY: dict[str, frozenset[str]] = {
    "Pass": frozenset({"Output"}),
    "Task": frozenset({"Output", "Arguments"}),
    "Choice": frozenset({"Output"}),
    "Wait": frozenset({"Output"}),
    "Succeed": frozenset({"Output"}),
    "Fail": frozenset(),
    "Parallel": frozenset({"Output", "Arguments"}),
    "Map": frozenset({"Output", "Items"}),
}

STATE_FIELDS: dict[str, frozenset[str]] = {
    t: BOTH_LANGUAGES[t] | JSONPATH_ONLY[t] | JSONATA_ONLY[t] for t in STATE_TYPES
}

MACHINE_FIELDS = frozenset(
    {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}
)
RETRIER_FIELDS = frozenset(
    {
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    }
)
CATCHER_FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath", "Output", "Assign", "Comment"})

# arn:<partition>:states:<region>:<account>:activity:<name>
ACTIVITY_ARN = re.compile(r"^arn:[\w-]+:states:[\w-]*:\d*:activity:.+$")
# arn:<partition>:states:::<service>:<action>[.sync|.sync:2|.waitForTaskToken]
TASK_RESOURCE = re.compile(
    r"^arn:(?P<partition>[\w-]+):states:(?P<region>[\w-]*):(?P<account>\d*):"
    r"(?P<service>[\w-]+):(?P<action>[^.]+?)(?P<suffix>\.sync(?::2)?|\.waitForTaskToken)?$"
)

# AWS's optimized integrations (the "arn:aws:states:::<service>:<action>" resources). Anything
# else under states::: is refused at creation time; every service API is reachable through the
# AWS SDK integrations instead ("arn:aws:states:::aws-sdk:<service>:<action>").
OPTIMIZED_INTEGRATIONS: dict[str, frozenset[str]] = {
    "lambda": frozenset({"invoke"}),
    "batch": frozenset({"submitJob"}),
    "dynamodb": frozenset({"getItem", "putItem", "updateItem", "deleteItem"}),
    "ecs": frozenset({"runTask"}),
    "eks": frozenset(
        {
            "createCluster",
            "deleteCluster",
            "createNodegroup",
            "deleteNodegroup",
            "createFargateProfile",
            "deleteFargateProfile",
            "runJob",
            "call",
        }
    ),
    "glue": frozenset({"startJobRun"}),
    "databrew": frozenset({"startJobRun"}),
    "sns": frozenset({"publish"}),
    "sqs": frozenset({"sendMessage"}),
    "states": frozenset({"startExecution"}),
    "events": frozenset({"putEvents"}),
    "apigateway": frozenset({"invoke"}),
    "http": frozenset({"invoke"}),
    "athena": frozenset(
        {"startQueryExecution", "stopQueryExecution", "getQueryExecution", "getQueryResults"}
    ),
    "codebuild": frozenset(
        {
            "startBuild",
            "stopBuild",
            "batchDeleteBuilds",
            "batchGetReports",
            "startBuildBatch",
            "stopBuildBatch",
            "retryBuildBatch",
            "retryBuild",
            "deleteBuildBatch",
        }
    ),
    "elasticmapreduce": frozenset(
        {
            "createCluster",
            "terminateCluster",
            "addStep",
            "cancelStep",
            "setClusterTerminationProtection",
            "modifyInstanceFleetByName",
            "modifyInstanceGroupByName",
        }
    ),
    "emr-containers": frozenset({"startJobRun", "createVirtualCluster", "deleteVirtualCluster"}),
    "emr-serverless": frozenset(
        {
            "createApplication",
            "startApplication",
            "stopApplication",
            "deleteApplication",
            "startJobRun",
            "cancelJobRun",
        }
    ),
    "sagemaker": frozenset(
        {
            "createTrainingJob",
            "createTransformJob",
            "createEndpoint",
            "createEndpointConfig",
            "createHyperParameterTuningJob",
            "createLabelingJob",
            "createModel",
            "createProcessingJob",
            "updateEndpoint",
        }
    ),
    "bedrock": frozenset({"invokeModel", "createModelCustomizationJob"}),
    "mediaconvert": frozenset({"createJob"}),
}
