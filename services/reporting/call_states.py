"""The `calls` table's housekeeping: stale states dropped, erased callers' numbers replaced.

A faust Table may be changed only while handling a message of a partition
that owns the key: the change goes to that partition of the table's
changelog. `calls` is co-partitioned with call-events, so neither a timer
(no message at all) nor the client-events agent that hears `caller.erased`
(whose partitions are not the key's) can change it safely. Both therefore
send a command to every partition of reporting's own `call-commands` topic,
which has as many partitions as call-events and so is assigned with them;
the worker handling partition p changes the states that live in p (each
state records its partition, services/reporting/missed.py `follow`).

- `sweep`, sent every REPORTING_CALL_SWEEP_SECONDS by the leader: states that
  started more than REPORTING_CALL_STATE_MAX_HOURS ago are dropped, so a call
  whose final status never came does not keep its caller's number for ever.
- `erase` (from `caller.erased`) carries the token only: a state whose
  caller's token is that token names the caller by the token from then on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import orjson
from faust.types import EventT, StreamT

from services.reporting import calls as call_rules
from services.reporting.app import app, call_commands, runtime
from services.reporting.app import calls as call_table
from services.reporting.config import call_sweep_seconds
from switchboard.privacy import caller_token

log = logging.getLogger(__name__)
SWEEP = "sweep"
ERASE = "erase"


async def send_to_every_partition(command: dict[str, Any]) -> None:
    """One copy of `command` to each partition of call-commands, each waited for."""
    value = orjson.dumps(command)
    sent = [
        await call_commands.send(key=None, value=value, partition=partition)
        for partition in range(app.conf.topic_partitions)
    ]
    for future in sent:
        await future


@app.timer(interval=call_sweep_seconds(), on_leader=True)
async def ask_for_a_sweep() -> None:
    await send_to_every_partition({"command": SWEEP})


@app.agent(call_commands, name="call-commands")
async def handle_commands(stream: StreamT) -> None:
    async for message in stream.events():
        handle(message)


def handle(message: EventT) -> None:
    try:
        command = orjson.loads(message.value)
    except orjson.JSONDecodeError:
        log.warning("an undecodable call command was skipped")
        return
    kind = command.get("command") if isinstance(command, dict) else None
    partition = message.message.partition
    if kind == SWEEP:
        sweep(partition)
    elif kind == ERASE and isinstance(command.get("token"), str):
        erase(partition, command["token"])
    else:
        log.warning("an unknown call command was skipped: %r", kind)


def states_in(partition: int) -> list[tuple[str, call_rules.State]]:
    return [
        (sid, state)
        for sid, state in list(call_table.items())
        if isinstance(state, dict) and state.get("partition") == partition
    ]


def sweep(partition: int) -> None:
    config = runtime().config
    now = runtime().clock.now()
    max_age = timedelta(hours=config.call_state_max_hours)
    dropped = 0
    for sid, state in states_in(partition):
        if call_rules.stale(state, now, max_age):
            del call_table[sid]
            dropped += 1
    if dropped:
        log.info(
            "dropped %d call state(s) older than %s on partition %d", dropped, max_age, partition
        )


def erase(partition: int, token: str) -> None:
    secret = runtime().config.privacy_token_secret
    for sid, state in states_in(partition):
        caller = state.get("caller")
        if caller and caller != token and caller_token(secret, str(caller)) == token:
            call_table[sid] = call_rules.with_caller(state, token)
            log.info("caller %s erased from the state of call %s", token, sid)
