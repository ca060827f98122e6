"""The Step Functions HTTP API (AWS JSON 1.0) over the service facade."""

from flowstate.api.app import create_app
from flowstate.api.backend import Backend

__all__ = ["Backend", "create_app"]
