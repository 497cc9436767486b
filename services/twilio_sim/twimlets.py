"""Twilio's hosted twimlets, answered by the simulator itself (pure: URL in, TwiML out).

A number's Voice URL or Voice Fallback URL may point at twimlets.com, small
apps Twilio hosts so that a number works without any server of the owner's.
Twilio fetches them inside its own network. The simulator must not send
anything off this machine, so it never requests them: it builds the TwiML
the twimlet would answer. Forward dials `PhoneNumber` (with its `Timeout` and
`CallerId` when given); Message says each `Message` / `Message[n]` in turn
(or plays it when it is a URL). Any other twimlet is not simulated.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from twilio.twiml.voice_response import VoiceResponse

HOSTS = frozenset({"twimlets.com", "www.twimlets.com"})
_MESSAGE = "Message"


class UnknownTwimlet(ValueError):
    """A twimlet the simulator does not play, or one missing what it needs."""


def is_twimlet(url: str) -> bool:
    """True for a URL that Twilio itself would answer (twimlets.com)."""
    host = urlsplit(url.partition("#")[0]).hostname or ""
    return host.lower() in HOSTS


def twimlet_twiml(url: str) -> str:
    """The TwiML the twimlet at `url` answers; UnknownTwimlet if it is not simulated."""
    parts = urlsplit(url.partition("#")[0])
    name = parts.path.strip("/").lower()
    query = parse_qsl(parts.query, keep_blank_values=True)
    if name == "forward":
        return _forward(dict(query))
    if name == "message":
        return _message(query)
    raise UnknownTwimlet(f"the {name or '(root)'} twimlet is not simulated")


def _forward(args: dict[str, str]) -> str:
    number = args.get("PhoneNumber", "").strip()
    if not number:
        raise UnknownTwimlet("the forward twimlet needs a PhoneNumber")
    options: dict[str, object] = {}
    timeout = args.get("Timeout", "").strip()
    if timeout.isdigit() and int(timeout) > 0:
        options["timeout"] = int(timeout)
    caller_id = args.get("CallerId", "").strip()
    if caller_id:
        options["caller_id"] = caller_id
    response = VoiceResponse()
    response.dial(**options).number(number)
    return str(response)


def _message(query: list[tuple[str, str]]) -> str:
    messages = [
        value.strip()
        for name, value in query
        if (name == _MESSAGE or (name.startswith(_MESSAGE + "[") and name.endswith("]")))
        and value.strip()
    ]
    if not messages:
        raise UnknownTwimlet("the message twimlet needs a Message")
    response = VoiceResponse()
    for message in messages:
        if message.startswith(("http://", "https://")):
            response.play(message)
        else:
            response.say(message)
    return str(response)
