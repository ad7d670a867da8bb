"""The emulated switch: channels, their variables and state, and the events they fire.

Events carry FreeSWITCH's standard header set in its order (Event-Name, Core-UUID, hostname,
dates, Event-Sequence, then Event-Subclass for CUSTOM, then channel headers), so a client sees
what a real switch sends. Every ESL connection registers a listener; ``fire`` hands each event to
all of them and each applies its own subscriptions and filters.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import re
import socket
import time
import uuid
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from callkit.audio import resample
from callkit.esl import Event
from callsim.audio_fork import DEFAULT_BUG, AudioFork
from callsim.beep import Beep, BeepDetector, BeepWatch
from callsim.fsconf import Action, Dialplan, expand
from callsim.line import CallerLine, through_codec
from callsim.switch_strings import parse_brackets, separate_string

Listener = Callable[[Event], None]
ORIGINATE_SYNTAX = (
    "<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] "
    "[<cid_num>] [<timeout_sec>]"
)
SHOW_SYNTAX = (
    "codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like "
    "<match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|"
    "chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status"
)
#: The core database's channels table, in its column order (switch_core_sqldb.c).
CHANNEL_COLUMNS = [
    "uuid",
    "direction",
    "created",
    "created_epoch",
    "name",
    "state",
    "cid_name",
    "cid_num",
    "ip_addr",
    "dest",
    "application",
    "application_data",
    "dialplan",
    "context",
    "read_codec",
    "read_rate",
    "read_bit_rate",
    "write_codec",
    "write_rate",
    "write_bit_rate",
    "secure",
    "hostname",
    "presence_id",
    "presence_data",
    "accountcode",
    "callstate",
    "callee_name",
    "callee_num",
    "callee_direction",
    "call_uuid",
    "sent_callee_name",
    "sent_callee_num",
    "initial_cid_name",
    "initial_cid_num",
    "initial_ip_addr",
    "initial_dest",
    "initial_dialplan",
    "initial_context",
]
log = logging.getLogger("callsim.switch")


#: How a far end can take an originate: it answers, or the carrier answers with a failure.
OUTCOMES = ("answer", "busy", "reject", "no_answer", "unallocated")
#: What the carrier sends for each failure: the cause sofia maps its SIP status to, and the status
#: (sofia_glue_sip_cause_to_freeswitch: 486 USER_BUSY, 603 CALL_REJECTED, 404 UNALLOCATED_NUMBER).
FAILURES = {
    "busy": ("USER_BUSY", "486"),
    "reject": ("CALL_REJECTED", "603"),
    "unallocated": ("UNALLOCATED_NUMBER", "404"),
}
#: A number no callee answers for: the carrier's 404 Not Found, as for a number never assigned.
UNKNOWN_NUMBER = "unallocated"


@dataclass
class Callee:
    """How the far end of an originated call behaves, attempt after attempt."""

    outcome: str = "answer"  # one of OUTCOMES
    ring_s: float = 0.0
    #: One outcome per originate to the number, in order, the last one repeating; empty: always
    #: ``outcome`` (``[busy, answer]``: the first attempt is busy, every later one answers).
    attempts: list[str] = field(default_factory=list)
    #: Runs on the channel as the callee answers: a scripted far end attaches to it there.
    on_answer: Callable[[Channel], None] | None = None
    #: Runs when an attempt ends unanswered, with the attempt's channel (hung up by then).
    on_failure: Callable[[Channel], None] | None = None
    dialled: int = 0  # originates to this number so far

    def __post_init__(self) -> None:
        unknown = [o for o in [self.outcome, *self.attempts] if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"callee outcome {unknown[0]!r} is not one of {', '.join(OUTCOMES)}")

    def next_outcome(self) -> str:
        """The outcome of the next originate to this number (and count it)."""
        self.dialled += 1
        if not self.attempts:
            return self.outcome
        return self.attempts[min(self.dialled, len(self.attempts)) - 1]


CODEC_RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 16000, "L16": 16000}
# Each 20 ms tick of a channel: (what the far end said, what was played to it), 16 kHz L16.
Tap = Callable[[bytes, bytes | None], None]


#: ``${api(args)}`` in an application's data (switch_channel_expand_variables runs the API).
_API_CALL = re.compile(r"\$\{(\w+)\(([^()]*)\)\}")

#: Q.850 codes of the causes the emulator ends calls with (switch_channel_cause_q850).
Q850 = {
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "CALL_REJECTED": 21,
    "DESTINATION_OUT_OF_ORDER": 27,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "ORIGINATOR_CANCEL": 16,
    "MANAGER_REQUEST": 16,
}


@dataclass
class Channel:
    uuid: str
    direction: str  # "inbound" or "outbound"
    caller_number: str
    destination_number: str
    variables: dict[str, str] = field(default_factory=dict)
    state: str = "CS_EXECUTE"
    call_state: str = "RINGING"
    answered: bool = False
    created: float = field(default_factory=time.time)
    answered_at: float | None = None
    # 16 kHz L16: what the far end says (read) and what the switch plays to it (write).
    codec: str = "PCMU"  # what the far end negotiated: PCMU, PCMA (8 kHz) or L16 (16 kHz)
    read_audio: bytearray = field(default_factory=bytearray)
    write_audio: bytearray = field(default_factory=bytearray)
    forks: dict[str, AudioFork] = field(default_factory=dict)
    playlist: deque[tuple[str, str]] = field(default_factory=deque)  # (file, application uuid)
    playing: Playback | None = None
    # A scripted far end (callsim run): produces the read side each tick instead of read_audio.
    line: CallerLine | None = None
    taps: list[Tap] = field(default_factory=list)
    # Told when playback to the caller is stopped on the switch's side (uuid_break, killAudio).
    stop_listeners: list[Callable[[str], None]] = field(default_factory=list)
    # Told what such a stop threw away unplayed (16 kHz L16): the rest of the streamed audio, or
    # of the file and (with ``all``) the files queued behind it.
    discard_listeners: list[Callable[[bytes], None]] = field(default_factory=list)
    hangup_cause: str | None = None
    hung_up_by: str | None = None
    transferred_to: str | None = None
    bridged_to: str | None = None  # the dial string a transfer's bridge rang
    context: str = "default"  # the dialplan context the channel is routed in
    rdnis: str | None = None  # the destination before the last transfer (the caller profile's)
    application: str = ""  # the dialplan application running now (show channels)
    application_data: str = ""
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    _last_written: bytes | None = None

    def profile(self) -> dict[str, str]:
        """The caller profile's fields, which a variable lookup falls back to after the
        channel's own variables (switch_caller_get_field_by_name): ``${rdnis}``,
        ``${caller_id_number}``, ``${destination_number}``…"""
        fields = {
            "caller_id_number": self.caller_number,
            "destination_number": self.destination_number,
            "context": self.context,
            "uuid": self.uuid,
        }
        if self.rdnis is not None:
            fields["rdnis"] = self.rdnis
        return fields

    def media_tick(self, samples: int, rate: int) -> tuple[bytes, bytes | None]:
        """One 20 ms media frame at ``rate``: (read, written or None when nothing is written)."""
        need = 320 * 2  # 20 ms at 16 kHz
        if self.line is not None:
            read16 = self.line.frame(self._last_written)
        else:
            read16 = bytes(self.read_audio[:need]).ljust(need, b"\0")
            del self.read_audio[:need]
        written16: bytes | None = None
        if self.write_audio:
            written16 = bytes(self.write_audio[:need]).ljust(need, b"\0")
            del self.write_audio[:need]
        self._last_written = written16
        for tap in self.taps:
            tap(read16, written16)
        return _at(read16, samples, rate), (
            _at(written16, samples, rate) if written16 is not None else None
        )

    def break_playback(self, *, flush_queue: bool, why: str = "uuid_break") -> None:
        """Stop the current file (CF_BREAK); with flush_queue also drop the queued ones."""
        for listener in self.stop_listeners:
            listener(why)
        if self.discard_listeners:
            thrown = bytes(self.write_audio)
            if self.playing is not None and not self.playing.broken:
                thrown += self.playing.audio[self.playing.position :]
            if flush_queue:
                thrown += b"".join(Switch.load(path) or b"" for path, _ in self.playlist)
            for discarded in self.discard_listeners:
                discarded(thrown)
        if flush_queue:
            self.playlist.clear()
        if self.playing is not None:
            self.playing.broken = True
        self.write_audio.clear()


def _at(pcm16k: bytes, samples: int, rate: int) -> bytes:
    if rate == 16000:
        return pcm16k
    out = resample(pcm16k, 16000, rate)  # frame by frame; both telephony rates divide evenly
    return out[: samples * 2].ljust(samples * 2, b"\0")


def _seconds(text: str | None, default: float) -> float:
    """A timeout as atoi reads it: digits, else the default (0 or nothing is no timeout set)."""
    digits = "".join(itertools.takewhile(str.isdigit, (text or "").strip()))
    return float(digits) if digits and int(digits) > 0 else default


def _created(ch: Channel) -> float:
    return ch.created


@dataclass
class Playback:
    file: str
    app_uuid: str
    broken: bool = False
    audio: bytes = b""  # the file as played (16 kHz L16), once loaded
    position: int = 0  # bytes of it handed to the channel so far


class Switch:
    def __init__(self, hostname: str | None = None, fork_build: str = "drachtio") -> None:
        self.core_uuid = str(uuid.uuid4())
        self.hostname = hostname or socket.gethostname()
        self.channels: dict[str, Channel] = {}
        self.listeners: list[Listener] = []
        # The far ends originated calls reach, by the number dialled.
        self.callees: dict[str, Callee] = {}
        # The SIP profiles' gateways (sofia/gateway/<name>/…): an originate through any other is
        # refused with INVALID_GATEWAY. None: no configuration loaded, every name is taken.
        self.gateways: set[str] | None = None
        self.gateways_down: set[str] = set()  # known but failing their pings: GATEWAY_DOWN
        self.faults: list[str] = []  # inputs that would have crashed a real FreeSWITCH
        # Which mod_audio_fork build the deployment runs: "drachtio" (upstream: playAudio files)
        # or "jambonz" (streamed L16 playback with marks).
        self.fork_build = fork_build
        # Global variables (the configuration's X-PRE-PROCESS set): channel lookups fall back here.
        self.globals: dict[str, str] = {}
        # The configuration's XML dialplan: transfers hunt it as the switch would.
        self.dialplan: Dialplan | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = itertools.count(1)

    # ------------------------------------------------------------------ events

    def event(
        self,
        name: str,
        headers: list[tuple[str, str]] | None = None,
        body: str = "",
        subclass: str | None = None,
        channel: Channel | None = None,
    ) -> Event:
        now = datetime.now(UTC)
        base = [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", "127.0.0.1"),
            ("FreeSWITCH-IPv6", "::1"),
            ("Event-Date-Local", now.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
            ("Event-Date-GMT", now.strftime("%a, %d %b %Y %H:%M:%S GMT")),
            ("Event-Date-Timestamp", str(int(now.timestamp() * 1_000_000))),
            ("Event-Calling-File", "callsim"),
            ("Event-Calling-Function", name.lower()),
            ("Event-Calling-Line-Number", "0"),
            ("Event-Sequence", str(next(self._sequence))),
        ]
        if subclass:
            base.append(("Event-Subclass", subclass))
        if channel is not None:
            base += self.channel_headers(channel)
        return Event(base + list(headers or []), body)

    def channel_headers(self, ch: Channel) -> list[tuple[str, str]]:
        if ch.state == "CS_HANGUP":
            answer_state = "hangup"  # switch_channel_down_nosig comes first
        else:
            answer_state = "answered" if ch.answered else "ringing"
        profile = [
            ("Caller-Caller-ID-Number", ch.caller_number),
            ("Caller-Destination-Number", ch.destination_number),
            *([("Caller-RDNIS", ch.rdnis)] if ch.rdnis is not None else []),
            ("Caller-Context", ch.context),
            ("Caller-Unique-ID", ch.uuid),
            # Microseconds since the epoch; 0 for what has not happened (never answered).
            ("Caller-Channel-Created-Time", str(int(ch.created * 1_000_000))),
            ("Caller-Channel-Answered-Time", str(int((ch.answered_at or 0) * 1_000_000))),
        ]
        return [
            ("Channel-State", ch.state),
            ("Channel-Call-State", ch.call_state),
            ("Channel-Name", f"sofia/callsim/{ch.caller_number}"),
            ("Unique-ID", ch.uuid),
            ("Call-Direction", ch.direction),
            ("Answer-State", answer_state),
            *([("Hangup-Cause", ch.hangup_cause)] if ch.hangup_cause else []),
            ("Channel-Read-Codec-Name", ch.codec),
            ("Channel-Read-Codec-Rate", str(CODEC_RATES[ch.codec])),
            ("Channel-Write-Codec-Name", ch.codec),
            ("Channel-Write-Codec-Rate", str(CODEC_RATES[ch.codec])),
            *profile,
            *((f"variable_{k}", v) for k, v in ch.variables.items()),
        ]

    def fire(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener(event)

    def fire_channel(
        self, name: str, ch: Channel, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.fire(self.event(name, headers, channel=ch))

    def fire_custom(self, subclass: str, ch: Channel, body: str | None = None) -> None:
        self.fire(self.event("CUSTOM", body=body or "", subclass=subclass, channel=ch))

    def record_fault(self, what: str) -> None:
        log.error("input that would crash FreeSWITCH", extra={"fault": what})
        self.faults.append(what)

    def say(self, ch: Channel, pcm16k: bytes) -> None:
        """The far end speaks: 16 kHz L16, through the channel's codec, onto its read side.

        PCMU and PCMA are 8 kHz G.711: the audio is band-limited to 8 kHz, encoded, decoded and
        brought back to 16 kHz, as FreeSWITCH's resampler does for a 16 kHz fork. G.722 is coded
        at 64 kbit/s at 16 kHz. L16 passes as is.
        """
        ch.read_audio += through_codec(ch.codec, pcm16k)

    # ------------------------------------------------------------------ channels

    def create_channel(
        self,
        *,
        direction: str,
        caller: str,
        destination: str,
        variables: dict[str, str] | None = None,
        channel_uuid: str | None = None,
        codec: str = "PCMU",
    ) -> Channel:
        if codec not in CODEC_RATES:
            raise ValueError(f"codec {codec!r} is not emulated; use {', '.join(CODEC_RATES)}")
        ch = Channel(
            channel_uuid or str(uuid.uuid4()),
            direction,
            caller,
            destination,
            {"direction": direction, **(variables or {})},  # the core sets it on every channel
            codec=codec,
        )
        self.channels[ch.uuid] = ch
        self.fire_channel("CHANNEL_CREATE", ch)
        return ch

    def answer(self, ch: Channel) -> None:
        if ch.answered:
            return
        ch.answered, ch.answered_at, ch.call_state = True, time.time(), "ACTIVE"
        self.fire_channel("CHANNEL_ANSWER", ch)

    def variable(self, ch: Channel, name: str) -> str | None:
        """A channel variable, else the global of that name (switch_channel_get_variable)."""
        value = ch.variables.get(name)
        return value if value is not None else self.globals.get(name)

    async def api_on(self, ch: Channel, prefix: str) -> list[str]:
        """Run the APIs in the channel's ``api_on_answer``-style variables (sorted by name)."""
        replies = []
        for name in sorted(k for k in ch.variables if k.startswith(prefix)):
            command, _, api_args = ch.variables[name].partition(" ")
            replies.append(await self.api(command, api_args))
        return replies

    def hangup(self, ch: Channel, cause: str = "NORMAL_CLEARING", by: str = "switch") -> None:
        """End the call; ``by`` says who: the far end ("caller"), an API (``uuid_kill``,
        ``sendmsg``) or the switch itself."""
        if ch.uuid not in self.channels:
            return
        ch.hangup_cause, ch.hung_up_by = cause, by
        ch.state, ch.call_state = "CS_HANGUP", "HANGUP"
        for fork in list(ch.forks.values()):  # closed with 1000; no event, as the module does
            asyncio.get_running_loop().create_task(fork.stop())
        ch.forks.clear()
        if ch.answered and "sip_hangup_disposition" not in ch.variables:
            ch.variables["sip_hangup_disposition"] = "recv_bye" if by == "caller" else "send_bye"
        self.fire_channel("CHANNEL_HANGUP", ch)
        # What the core's hangup state and the reporting state add before HANGUP_COMPLETE.
        now = time.time()
        ch.variables["hangup_cause"] = cause
        if cause in Q850:
            ch.variables["hangup_cause_q850"] = str(Q850[cause])
        ch.variables["duration"] = str(int(now - ch.created))
        ch.variables["billsec"] = str(int(now - ch.answered_at) if ch.answered_at else 0)
        self.fire_channel("CHANNEL_HANGUP_COMPLETE", ch)
        del self.channels[ch.uuid]
        ch.hung_up.set()
        self.fire_channel("CHANNEL_DESTROY", ch)

    # ------------------------------------------------------------------ APIs

    async def api(self, command: str, args: str) -> str:
        """Run an API as `api` would: the output text, errors included (never raises)."""
        handler = getattr(self, f"_api_{command}", None)
        if handler is None:
            return f"-ERR {command} Command not found!\n"
        result = handler(args)
        output: str = await result if inspect.isawaitable(result) else result
        return output or "-ERR no reply\n"

    def _channel(self, uuid_arg: str) -> Channel | None:
        return self.channels.get(uuid_arg)

    def _api_create_uuid(self, args: str) -> str:
        return str(uuid.uuid4())

    def _api_uuid_exists(self, args: str) -> str:
        return "true" if args.strip() in self.channels else "false"

    def _api_uuid_getvar(self, args: str) -> str:
        parts = separate_string(args, 2)
        if len(parts) < 2:
            return "-USAGE: <uuid> <var>\n"
        ch = self._channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        return ch.variables.get(parts[1], "_undef_")

    def _api_uuid_setvar(self, args: str) -> str:
        parts = separate_string(args, 3)
        if len(parts) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self._channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if len(parts) == 3:
            ch.variables[parts[1]] = parts[2]
        else:
            ch.variables.pop(parts[1], None)
        return "+OK\n"

    def _api_uuid_kill(self, args: str) -> str:
        parts = separate_string(args, 2)
        ch = self._channel(parts[0]) if parts else None
        if ch is None:
            return "-ERR No such channel!\n"
        self.hangup(ch, parts[1] if len(parts) > 1 else "NORMAL_CLEARING", by="uuid_kill")
        return "+OK\n"

    def _api_uuid_setvar_multi(self, args: str) -> str:
        parts = separate_string(args, 2)
        if len(parts) < 2:
            return "-USAGE: <uuid> <var>=<value>;<var>=<value>\n"
        ch = self._channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        for pair in parts[1].split(";"):
            name, _, value = pair.partition("=")
            if name:
                ch.variables[name] = value
        return "+OK\n"

    def _api_uuid_transfer(self, args: str) -> str:
        """uuid_transfer <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>].

        As in FreeSWITCH the reply is ``+OK`` once the transfer is queued; the channel then
        leaves park and routes through the dialplan on its own. A destination no extension of
        the context takes ends the call with NO_ROUTE_DESTINATION, which the caller hears.
        """
        usage = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        parts = separate_string(args, 5)
        if len(parts) < 2:
            return usage
        ch = self._channel(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        rest = parts[1:]
        if rest[0] in ("-bleg", "-both"):
            rest = rest[1:]
        if not rest:
            return usage
        exten = rest[0]
        dialplan = rest[1] if len(rest) > 1 else "XML"
        context = rest[2] if len(rest) > 2 else ch.context
        if ch.state == "CS_PARK":
            ch.state = "CS_EXECUTE"
            self.fire_channel("CHANNEL_UNPARK", ch)
        task = asyncio.get_running_loop().create_task(self._route(ch, exten, dialplan, context))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return "+OK\n"

    async def _route(self, ch: Channel, exten: str, dialplan: str, context: str) -> None:
        """A transferred channel's dialplan hunt (CS_ROUTING) and the extension it runs: the
        caller profile's destination becomes ``exten`` and the old one its ``rdnis``."""
        ch.rdnis = ch.destination_number
        ch.destination_number = exten
        if "destination_number" in ch.variables:
            ch.variables["destination_number"] = exten
        found = None
        if dialplan == "XML" and self.dialplan is not None:
            found = self.dialplan.hunt(context, self.lookup(ch, context=context))
        if found is None:
            log.info("transfer found no route", extra={"context": context, "dialplan": dialplan})
            self.hangup(ch, "NO_ROUTE_DESTINATION")
            return
        ch.context = context
        await self._run_actions(ch, found[1], exten)

    async def _run_actions(self, ch: Channel, actions: list[Action], exten: str = "") -> None:
        """Run an extension's applications in order (CS_EXECUTE); the call ends when they run
        out, unless one of them holds it (park, a bridge that connected)."""
        for action in actions:
            if ch.uuid not in self.channels:
                return
            data = await self.expand(ch, action.data)
            headers = [("Application", action.application), ("Application-Data", data)]
            ch.application, ch.application_data = action.application, data
            self.fire_channel("CHANNEL_EXECUTE", ch, headers)
            if action.application in ("set", "export"):
                name, _, value = data.partition("=")
                ch.variables[name] = value
            elif action.application == "hangup":
                self.hangup(ch, data or "NORMAL_CLEARING")
                return
            elif action.application == "answer":
                self.answer(ch)
            elif action.application == "park":
                ch.state = "CS_PARK"
                self.fire_channel("CHANNEL_PARK", ch)
                return
            elif action.application == "avmd_start":
                self._avmd_start(ch)
            elif action.application == "bridge":
                ch.transferred_to = exten
                endpoint, _, cause = data.partition("/")
                if endpoint == "error":  # mod_dptools' error endpoint fails with its cause
                    ch.variables["originate_disposition"] = cause or "NORMAL_CLEARING"
                else:
                    ch.bridged_to = data  # the person's leg is not emulated: the call stays
                    return
            self.fire_channel(
                "CHANNEL_EXECUTE_COMPLETE", ch, [*headers, ("Application-Response", "_none_")]
            )
        self.hangup(ch, "NORMAL_CLEARING")  # the extension ran out of actions

    def lookup(self, ch: Channel, **extra: str) -> dict[str, str]:
        """What ``${name}`` reads on the channel: its variables, then its caller profile, then
        the globals (switch_channel_get_variable)."""
        return {**self.globals, **ch.profile(), **extra, **ch.variables, "uuid": ch.uuid}

    async def expand(self, ch: Channel, data: str) -> str:
        """A dialplan action's data as the switch expands it when the application runs:
        ``$${name}`` is already gone (preprocessor), ``${name}`` reads the channel then the
        globals, and ``${api(args)}`` runs that API and is replaced by its output."""
        data = expand(data, self.lookup(ch))
        out, last = [], 0
        for call in _API_CALL.finditer(data):
            reply = await self.api(call.group(1), call.group(2))
            out += [data[last : call.start()], reply.rstrip("\n")]
            last = call.end()
        return "".join([*out, data[last:]])

    def _api_hupall(self, args: str) -> str:
        cause = args.strip().split(" ")[0] or "MANAGER_REQUEST"
        for ch in list(self.channels.values()):
            self.hangup(ch, cause, by="hupall")
        return "+OK hangup all channels with cause " + cause + "\n"

    def _api_uuid_answer(self, args: str) -> str:
        ch = self._channel(args.strip())
        if ch is None:
            return "-ERR No such channel!\n"
        self.answer(ch)
        return "+OK\n"

    async def _api_originate(self, args: str) -> str:
        """originate <call url> <exten>|&<app>(<args>) [dialplan] [context] [cid_name] [cid_num]
        [timeout_sec] (mod_commands' originate_function over switch_ivr_originate).

        ``sofia/gateway/<name>/<number>`` goes out through that gateway, which must be one of the
        SIP profiles' (else INVALID_GATEWAY, before any channel exists). The leg rings its callee
        (:class:`Callee`); a number nobody answers for gets the carrier's 404. A failure hangs the
        leg up with its cause and answers ``-ERR <CAUSE>``; once answered the reply is
        ``+OK <uuid>`` and the leg runs ``&<app>(<args>)``, or is transferred to ``<exten>`` in
        the dialplan's ``<context>`` (no extension takes it: NO_ROUTE_DESTINATION).
        """
        usage = f"-USAGE: {ORIGINATE_SYNTAX}\n"
        argv: list[str | None] = [None if a == "undef" else a for a in separate_string(args, 10)]
        if len(argv) < 2 or len(argv) > 7 or argv[0] is None or argv[1] is None:
            return usage
        argv += [None] * (7 - len(argv))
        target, dialplan, context = argv[1], argv[2] or "XML", argv[3] or "default"
        try:
            variables, url = parse_brackets(argv[0])
        except ValueError:
            return "-ERR INVALID_GATEWAY\n"
        if (
            any("${" in v for v in variables.values())
            and variables.get("origination_nested_vars") != "true"
        ):
            return "-ERR DESTINATION_OUT_OF_ORDER\n"  # FreeSWITCH's var check refuses ${…} here
        refused = self._endpoint_refuses(url)
        if refused is not None:
            return f"-ERR {refused}\n"  # sofia gave up before creating the leg: no events
        number = url.rsplit("/", 1)[-1].split(";", 1)[0]
        timeout = _seconds(variables.get("originate_timeout") or argv[6], 60.0)
        ch = self.create_channel(
            direction="outbound",
            caller=variables.get("origination_caller_id_number") or argv[5] or "0000000000",
            destination=number,
            variables=variables,
            channel_uuid=variables.get("origination_uuid"),
        )
        callee = self.callee_for(number)
        outcome = callee.next_outcome() if callee is not None else UNKNOWN_NUMBER
        if outcome != "unallocated":  # the carrier's 404 comes before any ringing
            self.fire_channel("CHANNEL_PROGRESS", ch)
        ring_s = callee.ring_s if callee is not None else 0.0
        # A leg hung up while it rings (uuid_kill, hupall) ends the originate with that cause.
        if outcome == "unallocated":
            self._refused(ch, outcome)
        elif outcome == "no_answer" or ring_s >= timeout:
            if not await self._ringing(ch, timeout):
                ch.variables["sip_hangup_disposition"] = "send_cancel"
                self.hangup(ch, "NO_ANSWER")  # originate_timeout: the switch cancels
        elif not await self._ringing(ch, ring_s) and outcome in FAILURES:
            self._refused(ch, outcome)
        if ch.uuid not in self.channels:
            if callee is not None and callee.on_failure is not None:
                callee.on_failure(ch)
            return f"-ERR {ch.hangup_cause}\n"
        if callee is not None and callee.on_answer is not None:
            callee.on_answer(ch)
        self.answer(ch)
        await self.api_on(ch, "api_on_answer")
        if ch.uuid not in self.channels:
            return f"-ERR {ch.hangup_cause}\n"
        if target.startswith("&") and len(target) > 1:
            app, _, app_args = target[1:].partition("(")
            actions = [Action(app, app_args.split(")", 1)[0])]
            run = self._run_actions(ch, actions)
        else:
            run = self._route(ch, target, dialplan, context)
        task = asyncio.get_running_loop().create_task(run)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return f"+OK {ch.uuid}\n"

    def _refused(self, ch: Channel, outcome: str) -> None:
        """The carrier's final answer to the INVITE: the leg hangs up with its cause."""
        cause, status = FAILURES[outcome]
        ch.variables["sip_term_status"] = status
        ch.variables["sip_hangup_disposition"] = "recv_refuse"
        self.hangup(ch, cause)

    def _endpoint_refuses(self, url: str) -> str | None:
        """The cause sofia_outgoing_channel fails with before a leg exists, or None."""
        endpoint, _, rest = url.partition("/")
        profile, _, dest = rest.partition("/")
        if endpoint != "sofia" or profile != "gateway":
            return None
        gateway, sep, number = dest.partition("/")
        if not sep or not gateway or not number:
            return "INVALID_URL"
        if self.gateways is not None and gateway not in self.gateways:
            return "INVALID_GATEWAY"
        if gateway in self.gateways_down:
            return "GATEWAY_DOWN"
        return None

    def callee_for(self, number: str) -> Callee | None:
        """The callee of a dialled number, with or without its leading +."""
        callee = self.callees.get(number)
        if callee is None:
            other = number[1:] if number.startswith("+") else f"+{number}"
            callee = self.callees.get(other)
        return callee

    @staticmethod
    async def _ringing(ch: Channel, seconds: float) -> bool:
        """Ring for ``seconds``; True when the leg was hung up meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ch.hung_up.wait(), max(0.0, seconds))
        return ch.hung_up.is_set()

    def _api_show(self, args: str) -> str:
        """show channels [count] [as json]: the core database's channels table, oldest first,
        as CSV (a title line, one line a channel, then "N total.") or as JSON rows."""
        argv = separate_string(args, 6)
        if not argv or argv[0] != "channels":
            return f"-USAGE: {SHOW_SYNTAX}\n"
        rows = [self._channel_row(ch) for ch in sorted(self.channels.values(), key=_created)]
        count = len(argv) > 1 and argv[1] == "count"
        rest = argv[2:] if count else argv[1:]
        as_json = len(rest) > 1 and rest[0] == "as" and rest[1] == "json"
        if as_json:
            if count:
                return json.dumps({"row_count": len(rows)}, separators=(",", ":"))
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
        if count:
            return f"\n{len(rows)} total.\n"
        lines = [",".join(CHANNEL_COLUMNS)] if rows else []
        lines += [",".join(row[c] for c in CHANNEL_COLUMNS) for row in rows]
        return "".join(line + "\n" for line in lines) + f"\n{len(rows)} total.\n"

    def _channel_row(self, ch: Channel) -> dict[str, str]:
        rate = str(CODEC_RATES[ch.codec])
        created = datetime.fromtimestamp(ch.created).astimezone()
        row = dict.fromkeys(CHANNEL_COLUMNS, "")
        row.update(
            uuid=ch.uuid,
            direction=ch.direction,
            created=created.strftime("%Y-%m-%d %H:%M:%S"),
            created_epoch=str(int(ch.created)),
            name=f"sofia/callsim/{ch.caller_number}",
            state=ch.state,
            cid_num=ch.caller_number,
            dest=ch.destination_number,
            application=ch.application,
            application_data=ch.application_data,
            dialplan="XML",
            context=ch.context,
            read_codec=ch.codec,
            read_rate=rate,
            write_codec=ch.codec,
            write_rate=rate,
            hostname=self.hostname,
            callstate=ch.call_state,
            call_uuid=ch.uuid,
            initial_cid_num=ch.caller_number,
            initial_dest=ch.rdnis or ch.destination_number,
            initial_dialplan="XML",
            initial_context=ch.context,
        )
        return row

    # ------------------------------------------------------------------ mod_avmd

    def _avmd_start(self, ch: Channel) -> None:
        """avmd_start: watch what the far end sends for a voicemail beep (once per channel).

        The events carry the Unique-ID and avmd's own headers, not the channel's data
        (avmd_fire_event); a detected beep also sets ``avmd_detect=TRUE``.
        """
        if any(isinstance(tap, BeepWatch) for tap in ch.taps):
            return  # avmd logs "already started" and leaves the running one
        started = time.time()
        self.fire(
            self.event(
                "CUSTOM",
                [
                    ("Unique-ID", ch.uuid),
                    ("Call-command", "avmd"),
                    ("Start-time", str(int(started * 1_000_000))),
                ],
                subclass="avmd::start",
            )
        )

        def beep(found: Beep) -> None:
            detection_us = int((time.time() - started) * 1_000_000)
            ch.variables["avmd_total_time"] = f"[{detection_us // 1000}]"
            ch.variables["avmd_detect"] = "TRUE"
            self.fire(
                self.event(
                    "CUSTOM",
                    [
                        ("Unique-ID", ch.uuid),
                        ("Call-command", "avmd"),
                        ("Beep-Status", "DETECTED"),
                        ("Frequency", f"{found.frequency_hz:f}"),
                        ("Frequency-variance", f"{found.frequency_variance:f}"),
                        ("Amplitude", f"{found.amplitude:f}"),
                        ("Amplitude-variance", "0.000000"),
                        ("Detection-time", str(detection_us)),
                        ("Detector-resolution", "0"),
                        ("Detector-offset", "0"),
                        ("Detector-index", "0"),
                    ],
                    subclass="avmd::beep",
                )
            )

        ch.taps.append(BeepWatch(BeepDetector(), beep))

    async def _api_uuid_audio_fork(self, args: str) -> str:
        usage = (
            "-USAGE: <uuid> [start | stop | send_text | pause | resume | graceful-shutdown ] "
            "[wss-url | path] [mono | mixed | stereo] [8000 | 16000 | 24000 | 32000 | 64000] "
            "[bugname] [metadata]\n"
        )
        # The jambonz build reads up to 10 arguments (its metadata is no longer the rest of the line).
        argv = separate_string(args, 10 if self.fork_build == "jambonz" else 7)
        if len(argv) < 2:
            return usage
        ch = self._channel(argv[0])
        if ch is None:
            return "-ERR Operation Failed\n"
        action = argv[1]
        if action == "start":
            if len(argv) < 4:
                return usage
            if len(argv) == 4:
                self.record_fault("uuid_audio_fork start without a sampling rate (strcmp on NULL)")
                return ""
            mix = argv[3]
            if mix not in ("mono", "mixed", "stereo"):
                return ""  # logged by the module before any reply; ESL then says -ERR no reply
            rate = {"16k": 16000, "8k": 8000}.get(argv[4]) or int(
                "".join(c for c in argv[4] if c.isdigit()) or 0
            )
            if rate not in (8000, 16000):
                return "-ERR Operation Failed\n"
            bugname, metadata = DEFAULT_BUG, None
            if len(argv) == 6:
                if argv[5].startswith(("{", "[")):
                    metadata = argv[5]
                else:
                    bugname = argv[5]
            elif len(argv) >= 7:
                bugname, metadata = argv[5], argv[6]
            streaming, stream_rate = False, rate
            if self.fork_build == "jambonz" and len(argv) > 8:
                streaming = argv[8] == "true"
                stream_rate = int(argv[9]) if len(argv) > 9 and argv[9].isdigit() else rate
            if bugname in ch.forks:
                return "-ERR Operation Failed\n"  # bug already attached (also after a drop)
            new_fork = AudioFork(
                self,
                ch,
                bugname,
                argv[2],
                mix,
                rate,
                metadata,
                streaming=streaming,
                stream_rate=stream_rate,
            )
            ch.forks[bugname] = new_fork
            new_fork.start()
            return "+OK Success\n"
        bugname = argv[2] if len(argv) > 2 and not argv[2].startswith(("{", "[")) else DEFAULT_BUG
        fork = ch.forks.get(bugname)
        if action == "stop":
            if fork is None:
                return "-ERR Operation Failed\n"
            final = next((a for a in argv[2:] if a.startswith(("{", "["))), None)
            del ch.forks[bugname]
            await fork.stop(final)
            return "+OK Success\n"
        if action == "send_text":
            if len(argv) < 3:
                return ""  # logged by the module; ESL then says -ERR no reply
            bugname, text = (argv[2], argv[3]) if len(argv) > 3 else (DEFAULT_BUG, argv[2])
            fork = ch.forks.get(bugname)
            if fork is None:
                return "-ERR Operation Failed\n"
            await fork.send_text(text)
            return "+OK Success\n"
        if action == "stop_play" and self.fork_build == "jambonz":
            if fork is None:
                return "-ERR Operation Failed\n"
            await fork.clear_stream()
            return "+OK Success\n"
        if action in ("pause", "resume"):
            if fork is None:
                return "-ERR Operation Failed\n"
            fork.paused = action == "pause"
            return "+OK Success\n"
        return usage

    # ------------------------------------------------------------------ playback

    def execute(self, ch: Channel, app: str, arg: str, app_uuid: str | None = None) -> None:
        """sendmsg execute / uuid_broadcast: applications run one after another (FIFO)."""
        if app != "playback":
            self.fire_channel(
                "CHANNEL_EXECUTE_COMPLETE",
                ch,
                [
                    ("Application", app),
                    ("Application-Data", arg),
                    ("Application-Response", "_none_"),
                    ("Application-UUID", app_uuid or str(uuid.uuid4())),
                ],
            )
            return
        ch.playlist.append((arg, app_uuid or str(uuid.uuid4())))
        if ch.playing is None:
            task = asyncio.get_running_loop().create_task(self._play_all(ch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _play_all(self, ch: Channel) -> None:
        while ch.playlist and ch.uuid in self.channels:
            path, app_uuid = ch.playlist.popleft()
            ch.playing = Playback(path, app_uuid)
            app = [
                ("Application", "playback"),
                ("Application-Data", path),
                ("Application-UUID", app_uuid),
            ]
            self.fire_channel("CHANNEL_EXECUTE", ch, app)
            audio = await asyncio.to_thread(self.load, path)
            if audio is None:
                ch.playing = None
                self.fire_channel(
                    "CHANNEL_EXECUTE_COMPLETE",
                    ch,
                    [*app, ("Application-Response", "FILE NOT FOUND")],
                )
                continue
            ch.playing.audio = audio
            self.fire_channel("PLAYBACK_START", ch, [("Playback-File-Path", path)])
            loop = asyncio.get_running_loop()
            tick = loop.time()
            for i in range(0, len(audio), 640):  # 20 ms at 16 kHz, in real time
                if ch.playing.broken or ch.uuid not in self.channels:
                    break
                ch.write_audio += audio[i : i + 640]
                ch.playing.position = i + 640
                del ch.write_audio[
                    : max(0, len(ch.write_audio) - 3200)
                ]  # nobody listening: keep 100 ms
                tick += 0.02
                await asyncio.sleep(max(0.0, tick - loop.time()))
            status = "break" if ch.playing.broken else "done"
            ch.playing = None
            self.fire_channel(
                "PLAYBACK_STOP", ch, [("Playback-File-Path", path), ("Playback-Status", status)]
            )
            self.fire_channel(
                "CHANNEL_EXECUTE_COMPLETE", ch, [*app, ("Application-Response", "FILE PLAYED")]
            )

    @staticmethod
    def load(path: str) -> bytes | None:
        """16 kHz L16 of a file mod_sndfile can play: .r8/.r16 raw 16-bit mono, or WAV."""
        try:
            if path.endswith((".r8", ".r16")):
                raw = Path(path).read_bytes()
                return (
                    resample(raw[: len(raw) // 2 * 2], 8000, 16000) if path.endswith(".r8") else raw
                )
            with wave.open(path, "rb") as w:
                if w.getsampwidth() != 2:
                    return None
                pcm = w.readframes(w.getnframes())
                if w.getnchannels() == 2:
                    pcm = np.frombuffer(pcm, "<i2")[0::2].tobytes()
                return resample(pcm, w.getframerate(), 16000)
        except (OSError, wave.Error, EOFError):
            return None

    def _api_uuid_break(self, args: str) -> str:
        parts = separate_string(args, 2)
        ch = self._channel(parts[0]) if parts else None
        if ch is None:
            return "-ERR No such channel!\n"
        ch.break_playback(flush_queue=len(parts) > 1 and parts[1] == "all")
        return "+OK\n"

    def _api_uuid_broadcast(self, args: str) -> str:
        parts = separate_string(args, 3)
        ch = self._channel(parts[0]) if parts else None
        if ch is None or len(parts) < 2:
            return "-ERR invalid uuid\n"
        app, _, app_arg = parts[1].partition("::")
        if app_arg:
            self.execute(ch, app, app_arg)
        else:
            self.execute(ch, "playback", parts[1])
        return "+OK Message sent\n"
