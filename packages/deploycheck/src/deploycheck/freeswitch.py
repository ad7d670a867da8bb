"""freeswitch/: the configuration as FreeSWITCH would load it, and the audio fork the dialplan starts.

The configuration is rendered by the image's own entrypoint (for both mod_audio_fork builds),
preprocessed the way switch_xml.c does it, parsed, and then checked for what breaks calls
silently on a real switch: undefined variables, directives inside comments, modules missing
from the load list, an event socket with the default password or without an ACL for the
bridge, codecs, and above all the ``uuid_audio_fork`` command the dialplan runs at answer time,
split with FreeSWITCH's own argument rules (switch_separate_string: runs of spaces separate, a
``'…'`` section is one argument, a backslash escapes a quote or a space, and the last argument
takes the rest of the line): the rate must be given (without it the module dereferences NULL),
the mix must be stereo, the bug name must not be empty, the metadata must reach the bridge as one
JSON object whatever the caller ID holds. The dialer's answered calls (``outbound XML agent``)
get the same checks on the fork their extension starts, plus what only they need: the fork comes
from ``${uuid_audio_fork(…)}`` (the leg is answered before the transfer, so ``api_on_answer``
never runs), the metadata says outbound with the campaign, contact and attempt ids, and a call
from the carrier to the user ``outbound`` cannot reach that extension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from callsim import fsconf
from callsim.switch_strings import separate_string

REQUIRED_MODULES = (
    "mod_event_socket",
    "mod_sofia",
    "mod_commands",
    "mod_dptools",
    "mod_dialplan_xml",
    "mod_spandsp",
    "mod_opus",
    "mod_audio_fork",
    "mod_avmd",
)
REQUIRED_CODECS = ("G722", "PCMU", "PCMA", "OPUS")
SAMPLE_ENV = {
    "ESL_PASSWORD": "sample-esl-password",
    "FORK_PASSWORD": "sample-fork-password",
    "CARRIER_PASSWORD": "sample-carrier-password",
    "FORK_USER": "freeswitch",
    "FORK_URL": "ws://fs-bridge:8080/fork",
}
#: A call whose caller ID would break naive argument splitting (space, quote-free).
SAMPLE_CALL = {
    "uuid": "6f0e1c9a-2b1d-4c8e-9a57-0d5e2f7b8c11",
    "destination_number": "+15550100",
    "caller_id_number": "+1 555 0199",
    "caller_id_name": "Jane Doe",
    "sip_h_X-Agent-Language": "en",
}
#: The dialer's originate target (``originate {…}sofia/gateway/carrier/+E164 outbound XML agent``)
#: and the answered campaign leg as its extension sees it: transferred there, so its destination
#: is the extension and rdnis the number dialled; the ids are the dialer's originate variables.
DIALER_EXTENSION, DIALER_CONTEXT = "outbound", "agent"
SAMPLE_OUTBOUND = {
    "uuid": "0c5d7e2a-9b41-4f6e-8a3d-51b2c7e9f014",
    "direction": "outbound",
    "destination_number": DIALER_EXTENSION,
    "rdnis": "+15550177",
    "caller_id_number": "+15550100100",
    "campaign_id": "c-1",
    "contact_id": "k-1",
    "attempt_id": "a-1",
}
_API_FORK = re.compile(r"\$\{uuid_audio_fork\((.*)\)\}")
MAX_URL = 512  # MAX_WS_URL_LEN
MAX_METADATA = 8191


def check_freeswitch(root: Path) -> list[str]:
    folder = root / "freeswitch"
    problems: list[str] = []
    for build, args in (("jambonz", 10), ("drachtio", 7)):
        env = {**SAMPLE_ENV, "AUDIO_FORK": build}
        try:
            conf = fsconf.render(folder, env)
        except fsconf.ConfError as exc:
            return [f"freeswitch/conf: {exc}"]
        found = [f"freeswitch/{p}" for p in conf.problems]
        found += list(_static(conf, env))
        found += [f"freeswitch/conf/dialplan ({build} build): {p}" for p in _fork(conf, env, args)]
        found += [
            f"freeswitch/conf/dialplan ({build} build, extension {DIALER_EXTENSION!r}): {p}"
            for p in _outbound(conf, env, args)
        ]
        found += list(_transfer_targets(conf, root))
        problems += [p for p in found if p not in problems]
    return problems


def _params(conf: fsconf.Config, name: str) -> dict[str, str]:
    node = conf.configuration(name)
    if node is None:
        return {}
    return {p.get("name", ""): p.get("value", "") for p in node.iter("param")}


def _static(conf: fsconf.Config, env: dict[str, str]) -> Iterator[str]:
    modules = conf.configuration("modules.conf")
    loaded = {m.get("module") for m in modules.iter("load")} if modules is not None else set()
    for module in REQUIRED_MODULES:
        if module not in loaded:
            yield f"freeswitch/conf/autoload_configs/modules.conf.xml: {module} is not loaded"

    esl = _params(conf, "event_socket.conf")
    if esl.get("password") != env["ESL_PASSWORD"]:
        yield (
            "freeswitch/conf/autoload_configs/event_socket.conf.xml: the password does not come "
            "from ESL_PASSWORD (FreeSWITCH would fall back to the well-known ClueCon)"
        )
    acl_name = esl.get("apply-inbound-acl")
    acl = conf.configuration("acl.conf")
    lists = {n.get("name") for n in acl.iter("list")} if acl is not None else set()
    if not acl_name:
        yield (
            "freeswitch/conf/autoload_configs/event_socket.conf.xml: no apply-inbound-acl; only "
            "loopback could connect and the bridge would be refused"
        )
    elif acl_name not in lists:
        yield f"freeswitch/conf/autoload_configs/acl.conf.xml: ACL {acl_name!r} is not defined"
    if esl.get("listen-ip") in ("", "127.0.0.1", "::1"):
        yield "freeswitch/conf/autoload_configs/event_socket.conf.xml: listens on loopback only"

    for name in ("MOD_AUDIO_BASIC_AUTH_USERNAME", "MOD_AUDIO_BASIC_AUTH_PASSWORD"):
        expected = env["FORK_USER" if name.endswith("USERNAME") else "FORK_PASSWORD"]
        if conf.globals.get(name) != expected:
            yield (
                f"freeswitch/conf/vars.xml: the global {name} does not come from "
                f"{'FORK_USER' if name.endswith('USERNAME') else 'FORK_PASSWORD'} (the bridge "
                "refuses the fork)"
            )

    sofia = conf.configuration("sofia.conf")
    profiles = list(sofia.iter("profile")) if sofia is not None else []
    if not profiles:
        yield "freeswitch/conf/sip_profiles: no SIP profile is loaded"
    plan = conf.dialplan()
    for profile in profiles:
        params = {p.get("name", ""): p.get("value", "") for p in profile.iter("param")}
        where = f"freeswitch/conf/sip_profiles ({profile.get('name')})"
        codecs = params.get("inbound-codec-prefs", "").split(",")
        for codec in REQUIRED_CODECS:
            if codec not in codecs:
                yield f"{where}: inbound-codec-prefs lacks {codec}"
        context = params.get("context", "")
        if plan.context(context) is None:
            yield f"{where}: context {context!r} has no dialplan"
        if params.get("apply-inbound-acl") is None and params.get("auth-calls") != "true":
            yield f"{where}: accepts calls from anyone (no auth-calls, no apply-inbound-acl)"
        if params.get("dtmf-type") != "rfc2833":
            yield f"{where}: dtmf-type should be rfc2833 (the bridge reads DTMF events)"
    switch = _params(conf, "switch.conf")
    if not (
        switch.get("rtp-start-port", "").isdigit() and switch.get("rtp-end-port", "").isdigit()
    ):
        yield "freeswitch/conf/autoload_configs/switch.conf.xml: no RTP port range"


def _fork(conf: fsconf.Config, env: dict[str, str], argc: int) -> Iterator[str]:
    sofia = conf.configuration("sofia.conf")
    contexts = (
        {p.get("value", "") for p in sofia.iter("param") if p.get("name") == "context"}
        if sofia is not None
        else set()
    )
    plan = conf.dialplan()
    for context in sorted(contexts):
        found = plan.hunt(context, SAMPLE_CALL)
        if found is None:
            yield f"context {context!r} does not take an inbound call to {SAMPLE_CALL['destination_number']}"
            continue
        variables: dict[str, str] = dict(SAMPLE_CALL)
        order: list[str] = []
        for action in found[1]:
            data = fsconf.expand(action.data, variables)
            order.append(action.application)
            if action.application in ("set", "export"):
                key, _, value = data.partition("=")
                variables[key] = value
        yield from _variables(variables, env, [a.data for a in found[1]])
        if (
            "answer" not in order
            or "park" not in order
            or order.index("answer") > order.index("park")
        ):
            yield "the call must be answered and then parked (the bridge drives it from there)"
        command = variables.get("api_on_answer", "")
        if not command:
            yield "no api_on_answer starts the audio fork when the call is answered"
            continue
        yield from _fork_command(command, env, argc)


def _outbound(conf: fsconf.Config, env: dict[str, str], argc: int) -> Iterator[str]:
    """The campaign leg: FreeSWITCH transfers it, answered, to ``outbound XML agent``.

    Being answered already, it never runs an ``api_on_answer`` set there: the fork has to start
    from the expansion of ``${uuid_audio_fork(…)}`` in an action, then the leg parks. A call from
    the carrier to the user ``outbound`` (direction inbound) must not get that far.
    """
    plan = conf.dialplan()
    found = plan.hunt(DIALER_CONTEXT, SAMPLE_OUTBOUND)
    if found is None:
        yield (
            f"no extension of context {DIALER_CONTEXT!r} takes the dialer's answered calls: "
            "FreeSWITCH would hang each one up as the callee answers (NO_ROUTE_DESTINATION)"
        )
        return
    variables: dict[str, str] = dict(SAMPLE_OUTBOUND)
    forks: list[str] = []
    order: list[str] = []
    for action in found[1]:
        data = fsconf.expand(action.data, variables)
        order.append(action.application)
        forks += _API_FORK.findall(data)
        if action.application in ("set", "export"):
            key, _, value = data.partition("=")
            variables[key] = value
    if not forks and "hangup" in order:
        yield (
            f"the dialer's answered calls reach extension {found[0]!r}, which hangs them up: "
            f"no extension of context {DIALER_CONTEXT!r} takes {DIALER_EXTENSION!r}"
        )
        return
    yield from _variables(variables, env, [a.data for a in found[1]])
    if not forks:
        if "api_on_answer" in variables:
            yield (
                "the fork is left to api_on_answer, which never runs: the leg was answered "
                "before the transfer; start it with ${uuid_audio_fork(…)} in a set"
            )
        else:
            yield "no ${uuid_audio_fork(…)} starts the audio fork"
    if "park" not in order:
        yield "the answered call must be parked (the bridge drives it from there)"
    for command in forks:
        yield from _fork_command(f"uuid_audio_fork {command}", env, argc, SAMPLE_OUTBOUND)
        meta = _metadata(command, argc)
        if meta is None:
            continue
        expected = {
            "direction": "outbound",
            "callee": SAMPLE_OUTBOUND["rdnis"],
            **{k: SAMPLE_OUTBOUND[k] for k in ("campaign_id", "contact_id", "attempt_id")},
        }
        for key, value in expected.items():
            if meta.get(key) != value:
                yield f"the metadata's {key} is {meta.get(key)!r}, not {value!r}"
    inbound = plan.hunt(DIALER_CONTEXT, {**SAMPLE_OUTBOUND, "direction": "inbound"})
    if inbound is not None and inbound[0] == found[0]:
        yield (
            "a call from the carrier to the user 'outbound' reaches the campaign extension: "
            "condition it on ${direction} = outbound"
        )


def _metadata(args: str, argc: int) -> dict[str, object] | None:
    argv = separate_string(args, argc)
    if len(argv) < 7:
        return None
    try:
        meta = json.loads(argv[6])
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def _transfer_targets(conf: fsconf.Config, root: Path) -> Iterator[str]:
    """Each clinic's transfer_target must reach a person: an extension that bridges the call.

    The bridge sends ``uuid_transfer <uuid> <target>``; FreeSWITCH answers +OK whatever the
    target, and only then finds no route and hangs the caller up (NO_ROUTE_DESTINATION).
    """
    plan = conf.dialplan()
    sofia = conf.configuration("sofia.conf")
    inbound = (
        next(
            (p.get("value", "") for p in sofia.iter("param") if p.get("name") == "context"),
            "default",
        )
        if sofia is not None
        else "default"
    )
    for clinic in sorted(root.glob("prompts/*/clinic.yaml")):
        shown = clinic.relative_to(root).as_posix()
        try:
            target = (yaml.safe_load(clinic.read_text(encoding="utf-8")) or {}).get(
                "transfer_target"
            )
        except (OSError, yaml.YAMLError) as exc:
            yield f"{shown}: cannot be read ({type(exc).__name__})"
            continue
        if not isinstance(target, str) or not target.strip():
            continue
        parts = separate_string(target.strip(), 3)
        exten, dialplan = parts[0], parts[1] if len(parts) > 1 else "XML"
        context = parts[2] if len(parts) > 2 else inbound
        if dialplan != "XML":
            continue  # an inline dialplan carries its own applications
        found = plan.hunt(context, {**SAMPLE_CALL, "destination_number": exten})
        if found is None:
            yield (
                f"{shown}: transfer_target {target!r} has no route in freeswitch/conf (no "
                f"extension of context {context!r} takes {exten!r}): FreeSWITCH would hang the "
                "caller up with NO_ROUTE_DESTINATION"
            )
        elif not any(a.application == "bridge" for a in found[1]):
            yield (
                f"{shown}: transfer_target {target!r} reaches extension {found[0]!r}, which "
                "bridges the call to nobody"
            )


def _variables(variables: dict[str, str], env: dict[str, str], data: list[str]) -> Iterator[str]:
    if variables.get("send_silence_when_idle") != "-1":
        yield (
            "send_silence_when_idle=-1 is not set: a stereo fork sends nothing while nothing plays "
            "(the caller's audio piles up and arrives late in a burst)"
        )
    secrets = {k: v for k, v in env.items() if "PASSWORD" in k or "TOKEN" in k}
    for name, value in secrets.items():
        if any(value in d for d in data):
            yield (
                f"a dialplan action carries {name}: FreeSWITCH logs every action with its "
                "arguments at info level (make it a global in vars.xml)"
            )


def _fork_command(
    command: str, env: dict[str, str], argc: int, call: dict[str, str] = SAMPLE_CALL
) -> Iterator[str]:
    api, _, args = command.partition(" ")
    if api != "uuid_audio_fork":
        yield f"api_on_answer runs {api!r}, not uuid_audio_fork"
        return
    argv = separate_string(args, argc)
    uuid = call["uuid"]
    if len(argv) < 4 or argv[1] != "start":
        yield f"uuid_audio_fork needs <uuid> start <url> <mix> <rate>; got {len(argv)} arguments"
        return
    if len(argv) == 4:
        yield "uuid_audio_fork start has no sampling rate: the module dereferences NULL and crashes"
        return
    if argv[0] != uuid:
        yield f"the first argument must be the call's uuid (got {argv[0][:40]!r})"
    url = urlsplit(argv[2])
    expected = urlsplit(env["FORK_URL"])
    if url.scheme not in ("ws", "wss"):
        yield f"the fork URL must be ws:// or wss:// (got {argv[2][:60]!r})"
    if (url.hostname, url.port) != (expected.hostname, expected.port) or url.path != (
        f"{expected.path}/{uuid}"
    ):
        yield f"the fork URL must be FORK_URL/<uuid> (got {argv[2][:80]!r})"
    if len(argv[2]) > MAX_URL:
        yield f"the fork URL is longer than the module's {MAX_URL} characters"
    if argv[3] != "stereo":
        yield (
            f"mix is {argv[3]!r}: the bridge needs stereo (caller left, agent right) for echo-aware "
            "barge-in"
        )
    if argv[4] not in ("16k", "16000"):
        yield f"the rate is {argv[4]!r}; the bridge expects 16 kHz (16k)"
    if len(argv) < 7:
        yield "the bug name and the metadata must both be given (bug name, then JSON)"
        return
    bugname, metadata = argv[5], argv[6]
    if not bugname or bugname.startswith(("{", "[")):
        yield f"the bug name is {bugname!r}: an empty or JSON bug name cannot be stopped later"
    try:
        meta = json.loads(metadata)
    except ValueError:
        yield (
            f"the metadata does not reach the bridge as JSON (a caller ID with spaces splits it): "
            f"{metadata[:80]!r}"
        )
        meta = None
    if isinstance(meta, dict):
        if meta.get("callId") != uuid:
            yield "the metadata's callId is not the call's uuid"
        if meta.get("caller") != call["caller_id_number"]:
            yield "the metadata's caller is not the caller ID"
    elif meta is not None:
        yield "the metadata must be a JSON object"
    if len(metadata) > MAX_METADATA:
        yield f"the metadata is longer than the module's {MAX_METADATA} characters"
    if argc == 10:
        if argv[7:10] != ["true", "true", "16000"]:
            yield (
                "the jambonz build needs '<bug> <metadata> true true 16000' to stream the agent's "
                f"audio back (got {argv[7:10]})"
            )
    elif len(argv) != 7:
        yield "the upstream build takes no arguments after the metadata"
    if re.search(r"\s", argv[0]):
        yield "the uuid argument holds whitespace"
