"""A decode step for the consumer framework's tests: a JSON object, or InvalidEvent with why."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import Message

from switchboard.events import InvalidEvent


def decode_value(raw: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"")
    except ValueError as err:
        raise InvalidEvent(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise InvalidEvent("not a JSON object")
    return value


def decode(msg: Message) -> dict[str, Any]:
    """The decode step as a StreamProcessor takes it: of the whole message."""
    return decode_value(msg.value())
