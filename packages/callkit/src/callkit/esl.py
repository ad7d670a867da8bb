"""FreeSWITCH Event Socket (ESL) wire format: framing, replies, events, in both directions.

Written from mod_event_socket's behaviour as the protocol reference describes it:

- client → server: a command is a block of lines ended by an empty line (``\\r`` ignored, leading
  blank lines skipped); line 1 is the command, then ``Name: value`` headers; with
  ``Content-Length: N`` exactly N body bytes follow (0..16 MiB, anything else drops the connection);
- server → client: a header block, then ``Content-Length`` bytes of body when that header is set;
- events: ``text/event-plain`` carries the serialized event as its body, ``Content-Length`` first;
  inside it every header value is URL-encoded (an empty one is ``_undef_``) and an event body
  follows its own ``Content-Length``; ``text/event-json`` carries a flat JSON object.

The transport (sockets, the emulator, the bridge's client) feeds bytes in and writes bytes out;
nothing here touches a socket.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from callkit.errors import InvalidInput

MAX_BODY_BYTES = 16 * 1024 * 1024
DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
_UNSAFE = set('\r\n #%&+:;<=>?@[\\]^`{|}"')


class EslProtocolError(InvalidInput):
    """The peer broke the framing; the connection is dropped, as FreeSWITCH does."""

    code = "esl_protocol_error"


def url_encode(value: str) -> str:
    """switch_url_encode: printable ASCII outside the unsafe set stays, everything else is %XX."""
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if 31 < byte < 127 and ch not in _UNSAFE else f"%{byte:02X}")
    return "".join(out)


def url_decode(value: str) -> str:
    return unquote(value)


# ---------------------------------------------------------------- messages


@dataclass
class Message:
    """A header block (ordered, names as sent) and an optional body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default

    @property
    def content_type(self) -> str | None:
        return self.get("Content-Type")

    @property
    def reply_text(self) -> str | None:
        return self.get("Reply-Text")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Command:
    """A client command: its first line, the headers after it, and a body."""

    line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def name(self) -> str:
        return self.line.split(" ", 1)[0].lower()

    @property
    def args(self) -> str:
        parts = self.line.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""

    def get(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass
class Event:
    """A decoded event: headers in order (values URL-decoded) and its body."""

    headers: list[tuple[str, str]]
    body: str = ""

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), default)

    @property
    def name(self) -> str | None:
        return self.get("Event-Name")

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")


# ---------------------------------------------------------------- reading


class _BlockReader:
    """Accumulates bytes; yields (header lines, body) once a whole block has arrived."""

    def __init__(self, *, skip_leading_blank: bool) -> None:
        self._buf = bytearray()
        self._skip = skip_leading_blank

    def _blocks(self, data: bytes) -> Iterable[tuple[list[str], bytes]]:
        self._buf += data
        while True:
            if self._skip:
                while self._buf and self._buf[0] in (10, 13):  # \n, \r
                    del self._buf[:1]
            end = self._buf.find(b"\n\n")
            crlf = self._buf.find(b"\r\n\r\n")
            if crlf != -1 and (end == -1 or crlf < end):
                end, sep = crlf, 4
            else:
                sep = 2
            if end == -1:
                if len(self._buf) > 1024 * 1024:
                    raise EslProtocolError("header block over 1 MiB without an empty line")
                return
            head = self._buf[:end].decode("utf-8", errors="replace").replace("\r", "")
            lines = head.split("\n")
            length = _content_length(lines[1:] if self._skip else lines)
            if length is None:
                del self._buf[: end + sep]
                yield lines, b""
                continue
            if len(self._buf) < end + sep + length:
                return
            body = bytes(self._buf[end + sep : end + sep + length])
            del self._buf[: end + sep + length]
            yield lines, body


def _content_length(lines: Sequence[str]) -> int | None:
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                n = int(value.strip())
            except ValueError:
                raise EslProtocolError(
                    f"Content-Length is not a number: {value.strip()!r}"
                ) from None
            if not 0 <= n <= MAX_BODY_BYTES:
                raise EslProtocolError(f"Content-Length {n} is outside 0..{MAX_BODY_BYTES}")
            return n
    return None


def _headers(lines: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.strip(), value.strip()))
    return out


class CommandReader:
    """Server side: bytes from a client in, whole commands out."""

    def __init__(self) -> None:
        self._reader = _BlockReader(skip_leading_blank=True)

    def feed(self, data: bytes) -> list[Command]:
        return [
            Command(lines[0].strip(), _headers(lines[1:]), body)
            for lines, body in self._reader._blocks(data)
        ]


class MessageReader:
    """Client side: bytes from FreeSWITCH in, whole messages out."""

    def __init__(self) -> None:
        self._reader = _BlockReader(skip_leading_blank=False)

    def feed(self, data: bytes) -> list[Message]:
        return [Message(_headers(lines), body) for lines, body in self._reader._blocks(data)]


def parse_event(message: Message) -> Event:
    """The event carried by a text/event-plain or text/event-json message."""
    kind = message.content_type
    if kind == "text/event-json":
        data = json.loads(message.body)
        body = str(data.pop("_body", ""))
        data.pop("Content-Length", None)
        return Event(
            [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()], body
        )
    if kind != "text/event-plain":
        raise EslProtocolError(f"not an event message: Content-Type {kind!r}")
    text = message.body.decode("utf-8", errors="replace")
    head, sep, rest = text.partition("\n\n")
    headers = []
    length = None
    for line in head.split("\n"):
        name, colon, value = line.partition(": ")
        if not colon:
            continue
        if name == "Content-Length":
            length = int(value)
            continue
        headers.append((name, "" if value == "_undef_" else url_decode(value)))
    body = rest[:length] if length is not None and sep else ""
    return Event(headers, body)


# ---------------------------------------------------------------- writing


def command(line: str, headers: Sequence[tuple[str, str]] = (), body: bytes | None = None) -> bytes:
    """Client side: one command block."""
    if "\n" in line or "\r" in line:
        raise InvalidInput("an ESL command line cannot contain a line break")
    for name, value in headers:
        if any(c in name + value for c in "\r\n"):
            raise InvalidInput(f"the ESL header {name!r} cannot contain a line break")
    out = line + "\n" + "".join(f"{k}: {v}\n" for k, v in headers)
    if body is not None:
        out += f"Content-Length: {len(body)}\n\n"
        return out.encode() + body
    return (out + "\n").encode()


def auth_request() -> bytes:
    return b"Content-Type: auth/request\n\n"


def command_reply(text: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = "".join(f"{k}: {v}\n" for k, v in extra)
    return f"Content-Type: command/reply\nReply-Text: {text}\n{lines}\n".encode()


def api_response(output: str) -> bytes:
    body = output.encode()
    return f"Content-Type: api/response\nContent-Length: {len(body)}\n\n".encode() + body


def disconnect_notice(extra: Sequence[tuple[str, str]] = ()) -> bytes:
    body = DISCONNECT_TEXT.encode()
    lines = "".join(f"{k}: {v}\n" for k, v in extra)
    return (
        f"Content-Type: text/disconnect-notice\n{lines}Content-Length: {len(body)}\n\n".encode()
        + body
    )


def serialize_event_plain(headers: Sequence[tuple[str, str]], body: str | None = None) -> bytes:
    """switch_event_serialize: encoded values, ``_undef_`` for empty, then the body if any."""
    text = "".join(f"{k}: {url_encode(v) if v != '' else '_undef_'}\n" for k, v in headers)
    if body:
        raw = body.encode()
        return text.encode() + f"Content-Length: {len(raw)}\n\n".encode() + raw
    return (text + "\n").encode()


def serialize_event_json(headers: Sequence[tuple[str, str]], body: str | None = None) -> bytes:
    data: dict[str, str] = {}
    for k, v in headers:
        data[k] = v
    if body:
        data["Content-Length"] = str(len(body.encode()))
        data["_body"] = body
    return json.dumps(data).encode()


def event_message(
    headers: Sequence[tuple[str, str]], body: str | None = None, *, fmt: str = "plain"
) -> bytes:
    """An event as delivered to a subscriber: Content-Length first, then Content-Type."""
    inner = (
        serialize_event_json(headers, body)
        if fmt == "json"
        else serialize_event_plain(headers, body)
    )
    return f"Content-Length: {len(inner)}\nContent-Type: text/event-{fmt}\n\n".encode() + inner
