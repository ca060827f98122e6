"""Tags: TagResource, UntagResource, ListTagsForResource.

AWS tags state machines and activities only (recorded AWS: a version ARN is ResourceNotFound),
at most 50 per resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowstate.service.errors import ServiceError
from flowstate.service.resources import (
    Resources,
    activity_name,
    check_arn_prefix,
    not_found,
    state_machine_ref,
)

__all__ = ["Tags"]


class Tags(Resources):
    def _taggable(self, arn: str) -> str:
        """``arn`` if it names an existing state machine or activity; ResourceNotFound (or
        InvalidArn for what is not an ARN at all) otherwise."""
        check_arn_prefix(arn)
        try:
            ref = state_machine_ref(arn)
        except ServiceError:
            ref = None
        if ref is not None and ref.version is None and ref.alias is None:
            if self.store.get_state_machine(arn) is not None:
                return arn
            raise not_found(arn)
        try:
            activity_name(arn)
        except ServiceError:
            raise not_found(arn) from None
        if self.store.get_activity(arn) is None:
            raise not_found(arn)
        return arn

    def tag_resource(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = self._taggable(request["resourceArn"])
        self._add_tags(arn, self._tag_map(request["tags"], arn))
        return {}

    def untag_resource(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = self._taggable(request["resourceArn"])
        self.store.remove_tags(arn, list(request["tagKeys"]))
        return {}

    def list_tags_for_resource(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = self._taggable(request["resourceArn"])
        tags = self.store.get_tags(arn)
        return {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
