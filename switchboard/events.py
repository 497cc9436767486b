"""The event envelope every service produces and consumes, and its schemas.

An event is a fact in the past tense (`call.received`, `call.routed`). The
envelope carries a unique `id` (consumers use it for idempotency), `type`,
`version`, `occurredAt`, `source`, the `callSid` / `clientId` where they
exist, and the payload under `data`. Every produced event must validate
against `schemas/<type>.v<version>.json`; `validate` enforces that at the
producer and consumers call it on the way in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import jsonschema_rs
import orjson

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

# Deterministic ids for events derived from an external delivery (a webhook):
# a retried delivery gets the same id, so every consumer sees it as a duplicate.
_EVENT_NAMESPACE = uuid.UUID("8f1e4f3a-5b0c-4c3e-9a55-6f2f0e4c9d21")


_T = TypeVar("_T")


class _computed_once(Generic[_T]):
    """A property computed on first read and then kept in the instance.

    functools.cached_property does the same but, before Python 3.12, takes a
    lock on every first read, which costs more than parsing a timestamp. It
    writes the instance's __dict__ directly, so it works on frozen classes.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _computed_once[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self._compute(instance)
        instance.__dict__[self._name] = value
        return value


class InvalidEvent(ValueError):
    """A message that is not a valid event of a known type and version."""


@dataclass(frozen=True)
class Event:
    type: str
    source: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 1
    occurredAt: str = field(default_factory=lambda: utc_now_iso())
    callSid: str | None = None
    clientId: str | None = None
    requestId: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurredAt": self.occurredAt,
            "source": self.source,
            "data": self.data,
        }
        for name in ("callSid", "clientId", "requestId"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON with sorted keys (orjson: a tenth of the stdlib's time)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)

    @_computed_once
    def occurred_at(self) -> datetime:
        """`occurredAt` as a datetime in UTC, parsed once (a consumer reads it often)."""
        return parse_timestamp(self.occurredAt)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def read_time(value: object, what: str) -> datetime:
    """`value` as a time in UTC; InvalidEvent naming `what` when it holds none.

    For an event's times after validation: RFC 3339 allows some that
    Python's datetime cannot hold (see `decode`).
    """
    try:
        return parse_timestamp(str(value))
    except (ValueError, OverflowError) as err:
        raise InvalidEvent(f"{what} {value!r} is not a time this system can read ({err})") from None


def delivery_id(kind: str, params: dict[str, str]) -> str:
    """An event id that is the same for every delivery of the same webhook."""
    canonical = kind + "\n" + "\n".join(f"{k}={params[k]}" for k in sorted(params))
    return str(uuid.uuid5(_EVENT_NAMESPACE, canonical))


@lru_cache(maxsize=1)
def _registry() -> jsonschema_rs.Registry:
    resources = []
    for path in sorted(SCHEMAS_DIR.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], schema))
    return jsonschema_rs.Registry(resources)


def event_types() -> list[tuple[str, int]]:
    """Every (type, version) that has a schema in schemas/."""
    found = []
    for path in sorted(SCHEMAS_DIR.glob("*.v*.json")):
        name, _, version = path.name.removesuffix(".json").rpartition(".v")
        if name != "envelope":
            found.append((name, int(version)))
    return found


# Validation runs on every event a producer sends and a consumer reads, so it
# uses a compiled validator (jsonschema-rs: about a microsecond per event,
# where a pure-Python validator takes over a hundred).
@cache
def _validator(event_type: str, version: int) -> Any:
    path = SCHEMAS_DIR / f"{event_type}.v{version}.json"
    if not path.is_file():
        raise InvalidEvent(f"unknown event type {event_type!r} version {version}")
    schema = json.loads(path.read_text())
    return jsonschema_rs.validator_for(schema, registry=_registry(), validate_formats=True)


def validate(body: dict[str, Any]) -> None:
    """Raise InvalidEvent unless `body` is a valid event of a known type."""
    event_type = body.get("type")
    version = body.get("version")
    if not isinstance(event_type, str) or not isinstance(version, int):
        raise InvalidEvent("envelope lacks a string 'type' and an integer 'version'")
    validator = _validator(event_type, version)
    if validator.is_valid(body):
        return
    first = min(validator.iter_errors(body), key=lambda e: e.message)
    where = "/".join(str(p) for p in first.instance_path) or "(root)"
    raise InvalidEvent(f"{event_type} v{version} invalid at {where}: {first.message}")


def decode(raw: bytes | None) -> Event:
    """Parse and validate one message value into an Event.

    orjson parses a message several times faster than the json module, and
    it is stricter where that does not matter for events: NaN, integers
    beyond 64 bits and lone surrogates are refused as not JSON.
    """
    if raw is None:
        raise InvalidEvent("empty message")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidEvent(f"not JSON: {err}") from None
    if not isinstance(body, dict):
        raise InvalidEvent("event must be a JSON object")
    validate(body)
    # RFC 3339, and so the schema's date-time format, allows times Python's
    # datetime cannot hold (a lower-case "t", a leap second, a year past 9999
    # once the offset is applied). Read here, once, such an event is refused
    # like any other invalid one, instead of failing a consumer's handling of
    # it again on every retry.
    occurred_at = read_time(body["occurredAt"], f"{body['type']} v{body['version']}: occurredAt")
    # The fields straight into the instance: the frozen dataclass's __init__
    # sets them one by one through object.__setattr__, and on the consumer's
    # path that was a third of decoding a message.
    event = object.__new__(Event)
    object.__setattr__(
        event,
        "__dict__",
        {
            "type": body["type"],
            "source": body["source"],
            "data": body["data"],
            "id": body["id"],
            "version": body["version"],
            "occurredAt": body["occurredAt"],
            "callSid": body.get("callSid"),
            "clientId": body.get("clientId"),
            "requestId": body.get("requestId"),
            "occurred_at": occurred_at,  # what the occurred_at property computes
        },
    )
    return event
