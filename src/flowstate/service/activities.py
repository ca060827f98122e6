"""Activities: CreateActivity, DescribeActivity, DeleteActivity, ListActivities.

The catalog side only: the tasks workers poll for (GetActivityTask, SendTask*) are the
execution side's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowstate.service.arns import check_name
from flowstate.service.configuration import encryption_configuration
from flowstate.service.errors import ACTIVITY_ALREADY_EXISTS, ACTIVITY_DOES_NOT_EXIST, ServiceError
from flowstate.service.resources import Resources, activity_name, json_object
from flowstate.storage.catalog import ActivityRecord

__all__ = ["Activities"]


class Activities(Resources):
    def create_activity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        name = request["name"]
        check_name(name)
        arn = self.partition.activity_arn(name)
        tags = self._tag_map(request.get("tags") or (), arn)
        encryption = encryption_configuration(request.get("encryptionConfiguration"))
        attributes = {} if encryption is None else {"encryptionConfiguration": encryption}
        wanted = ActivityRecord(arn, name, self._now(), json.dumps(attributes))
        activity, created = self.store.create_activity(wanted)
        if created:
            self._add_tags(arn, tags)
        elif json_object(activity.attributes).get("encryptionConfiguration") != encryption:
            # AWS: idempotent on the name; differing tags are ignored, not applied.
            raise ServiceError(ACTIVITY_ALREADY_EXISTS, f"Activity Already Exists: '{arn}'")
        return {"activityArn": arn, "creationDate": activity.created_at}

    def describe_activity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["activityArn"]
        activity_name(arn)
        activity = self.store.get_activity(arn)
        if activity is None:
            # Recorded AWS.
            raise ServiceError(ACTIVITY_DOES_NOT_EXIST, f"Activity Does Not Exist: '{arn}'")
        described: dict[str, Any] = {
            "activityArn": activity.arn,
            "name": activity.name,
            "creationDate": activity.created_at,
        }
        encryption = json_object(activity.attributes).get("encryptionConfiguration")
        if encryption is not None:
            described["encryptionConfiguration"] = encryption
        return described

    def delete_activity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["activityArn"]
        activity_name(arn)
        # Recorded AWS: deleting twice is no error.
        self.store.delete_activity(arn)
        return {}

    def list_activities(self, request: Mapping[str, Any]) -> dict[str, Any]:
        page = self._page(
            lambda: self.store.list_activities(
                request.get("maxResults") or 0, request.get("nextToken")
            )
        )
        response: dict[str, Any] = {
            "activities": [
                {"activityArn": a.arn, "name": a.name, "creationDate": a.created_at}
                for a in page.items
            ]
        }
        if page.next_token is not None:
            response["nextToken"] = page.next_token
        return response
