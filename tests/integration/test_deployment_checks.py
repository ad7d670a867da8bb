"""The deployment's static checks: the real files pass, and each kind of breakage is caught.

There is no Docker engine or FreeSWITCH here, so compose.yaml, freeswitch/ and the Dockerfiles
are checked statically (deploycheck). These tests prove the checks pass on what is committed and
fail, naming the problem, on copies broken the way real deployments break.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from callsim import fsconf
from deploycheck import check_compose, check_dockerfiles, check_freeswitch

ROOT = Path(__file__).resolve().parents[2]
COPIED = (
    "compose.yaml",
    ".env.example",
    "freeswitch",
    "services",
    "packages/callkit",
    "requirements",
    "scripts/llama-cpp-text-only.cmake",
    "prompts",
    "deploy",
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the checks read, to break."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".mypy_cache")
    for name in COPIED:
        src, dst = ROOT / name, tmp_path / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        elif src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return tmp_path


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def test_the_committed_deployment_passes_every_check() -> None:
    problems = check_compose(ROOT) + check_freeswitch(ROOT) + check_dockerfiles(ROOT)
    assert problems == [], "\n".join(problems)


def test_the_cli_reports_each_check_and_fails_on_a_broken_copy(repo: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "deploycheck", "--root", str(ROOT), "compose", "freeswitch"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert re.search(r"^compose\s+ok", ok.stdout, re.MULTILINE)
    assert re.search(r"^freeswitch\s+ok", ok.stdout, re.MULTILINE)

    edit(repo / "compose.yaml", "      NOTIFY_HOST: 0.0.0.0\n", "      NOTIFY_HOTS: 0.0.0.0\n")
    bad = subprocess.run(
        [sys.executable, "-m", "deploycheck", "--root", str(repo), "compose"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "NOTIFY_HOTS is not a setting of notifier" in bad.stdout


# ---------------------------------------------------------------------------------- compose


def _drop_healthcheck(repo: Path) -> None:
    text = (repo / "compose.yaml").read_text(encoding="utf-8")
    start = text.index("  notifier:")
    block_start = text.index("    healthcheck:\n", start)
    block_end = text.index("    deploy:\n", block_start)
    (repo / "compose.yaml").write_text(text[:block_start] + text[block_end:], encoding="utf-8")


COMPOSE_BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "a service without a healthcheck": (_drop_healthcheck, "services.notifier: has no healthcheck"),
    "a mounted file that is not there": (
        lambda r: edit(
            r / "compose.yaml", "./deploy/monitoring/alerts.yml:", "./deploy/monitoring/alert.yml:"
        ),
        "mounts ./deploy/monitoring/alert.yml, which is not in the repository",
    ),
    "a service the shared image does not have": (
        lambda r: edit(r / "compose.yaml", "args: {SERVICE: notifier,", "args: {SERVICE: notify,"),
        "services.notifier.build: SERVICE=notify is not a folder of services/",
    ),
    "a misspelt setting": (
        lambda r: edit(
            r / "compose.yaml", "ASR_MAX_SESSIONS: ${ASR_MAX_SESSIONS:-8}", "ASR_MAX_SESION: 8"
        ),
        "ASR_MAX_SESION is not a setting of asr_gateway",
    ),
    "Redis published to the world": (
        lambda r: edit(
            r / "compose.yaml",
            "    volumes:\n      - redis-data:/data\n",
            '    volumes:\n      - redis-data:/data\n    ports: ["6379:6379"]\n',
        ),
        "services.redis: publishes '6379:6379' to every interface",
    ),
    "a secret with a default": (
        lambda r: [
            edit(
                r / "compose.yaml",
                "${ESL_PASSWORD:?set ESL_PASSWORD (the FreeSWITCH event socket password) in .env}",
                "${ESL_PASSWORD:-ClueCon}",
                3,  # FreeSWITCH, the bridge and the dialer
            ),
            edit(
                r / "compose.yaml",
                "${FORK_PASSWORD:?set FORK_PASSWORD (the audio fork's Basic-auth password) in .env}",
                "${FORK_PASSWORD:-secret}",
                2,
            ),
            edit(
                r / "compose.yaml",
                "${DIALER_API_TOKEN:?set DIALER_API_TOKEN (the campaign API's bearer token) in .env}",
                "${DIALER_API_TOKEN:-token}",
            ),
            edit(
                r / "compose.yaml",
                "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the campaign database's password) in .env}",
                "${POSTGRES_PASSWORD:-postgres}",
            ),
        ],
        "starts without any secret set",
    ),
    "a key the Compose specification does not know": (
        lambda r: edit(
            r / "compose.yaml", "    ipc: host\n", "    ipc: host\n    gpus_please: 1\n"
        ),
        "Unevaluated properties are not allowed ('gpus_please' was unexpected)",
    ),
    "a wrong type for a Compose key": (
        lambda r: edit(
            r / "compose.yaml",
            "    init: true\n    logging: *logging\n    networks: [voice, egress]\n    environment:\n      ESL_PASSWORD",
            "    init: [yes]\n    logging: *logging\n    networks: [voice, egress]\n    environment:\n      ESL_PASSWORD",
        ),
        "services/freeswitch/init",
    ),
    "a variable missing from .env.example": (
        lambda r: edit(
            r / "compose.yaml", "TTS_CACHE_DIR: /cache", "TTS_CACHE_DIR: ${TTS_CACHE:-/cache}"
        ),
        "${TTS_CACHE} is not listed in .env.example",
    ),
    "the bridge and the switch on different secrets": (
        lambda r: edit(
            r / "compose.yaml",
            "BRIDGE_FORK_PASSWORD: ${FORK_PASSWORD:?",
            "BRIDGE_FORK_PASSWORD: ${ESL_PASSWORD:?",
        ),
        "fs-bridge BRIDGE_FORK_PASSWORD and freeswitch FORK_PASSWORD must come from the same variable",
    ),
    "the bridge started without its required password": (
        lambda r: edit(
            r / "compose.yaml",
            "      BRIDGE_ESL_PASSWORD: ${ESL_PASSWORD:?set ESL_PASSWORD (the FreeSWITCH event socket password) in .env}\n",
            "",
        ),
        "fs_bridge cannot start without BRIDGE_ESL_PASSWORD",
    ),
    "FreeSWITCH given a variable its entrypoint ignores": (
        lambda r: edit(
            r / "compose.yaml",
            "      FS_LOG_LEVEL: ${FS_LOG_LEVEL:-info}",
            "      FS_LOGLEVEL: info",
        ),
        "freeswitch/docker-entrypoint.sh does not read FS_LOGLEVEL",
    ),
    "a healthcheck on another port than the service's": (
        lambda r: edit(
            r / "compose.yaml",
            "urlopen('http://127.0.0.1:8085/ready', timeout=3)",
            "urlopen('http://127.0.0.1:8086/ready', timeout=3)",
        ),
        "services.notifier.healthcheck: probes port 8086, but notifier listens on 8085",
    ),
    "an undocumented .env.example entry": (
        lambda r: edit(
            r / ".env.example",
            "\n# ---------------------------------------------------------------- models\n",
            "\nASR_BEAM_SIZE=5\n\n# ---------------------------------------------------------------- models\n",
        ),
        "ASR_BEAM_SIZE has no comment saying what it is",
    ),
}


@pytest.mark.parametrize("breakage", sorted(COMPOSE_BREAKAGES))
def test_compose_breakage_is_caught(repo: Path, breakage: str) -> None:
    assert check_compose(repo) == []
    breaker, expected = COMPOSE_BREAKAGES[breakage]
    breaker(repo)
    problems = check_compose(repo)
    assert any(expected in p for p in problems), "\n".join(problems) or "no problem found"


# ---------------------------------------------------------------------------------- freeswitch

DIALPLAN = "freeswitch/conf/dialplan/agent.xml"
FORK = "|stereo|16k|audio_fork|"

FREESWITCH_BREAKAGES: dict[str, tuple[str, str, str, str]] = {
    "no sampling rate": (DIALPLAN, FORK, "|stereo|audio_fork|", "the rate is 'audio_fork'"),
    "mono instead of stereo": (DIALPLAN, FORK, "|mono|16k|audio_fork|", "mix is 'mono'"),
    "spaces instead of the | separator": (
        DIALPLAN,
        "uuid_audio_fork ^^|${uuid}|start|$${fork_url}/${uuid}|stereo|16k|audio_fork|",
        "uuid_audio_fork ${uuid} start $${fork_url}/${uuid} stereo 16k audio_fork ",
        "the metadata does not reach the bridge as JSON",
    ),
    "an empty bug name": (DIALPLAN, FORK, "|stereo|16k||", "the bug name is ''"),
    "no silence when idle": (
        DIALPLAN,
        '<action application="set" data="send_silence_when_idle=-1"/>',
        "",
        "send_silence_when_idle=-1 is not set",
    ),
    "parked before answering": (
        DIALPLAN,
        '<action application="answer"/>\n        <action application="park"/>',
        '<action application="park"/>\n        <action application="answer"/>',
        "answered and then parked",
    ),
    "the default event socket password": (
        "freeswitch/conf/autoload_configs/event_socket.conf.xml",
        'value="$${esl_password}"',
        'value="ClueCon"',
        "the password does not come from ESL_PASSWORD",
    ),
    "no ACL for the bridge": (
        "freeswitch/conf/autoload_configs/event_socket.conf.xml",
        '<param name="apply-inbound-acl" value="esl_clients"/>',
        "",
        "no apply-inbound-acl",
    ),
    "a directive inside a comment": (
        "freeswitch/conf/vars.xml",
        '  <X-PRE-PROCESS cmd="set" data="sip_port=5080"/>',
        '  <!-- <X-PRE-PROCESS cmd="set" data="sip_port=5060"/> -->\n'
        '  <X-PRE-PROCESS cmd="set" data="sip_port=5080"/>',
        "X-PRE-PROCESS inside an XML comment still runs",
    ),
    "an undefined variable": (
        "freeswitch/conf/sip_profiles/agent.xml",
        "$${carrier_proxy}",
        "$${carrier_host}",
        "$${carrier_host} is not defined",
    ),
    "mod_audio_fork not loaded": (
        "freeswitch/conf/autoload_configs/modules.conf.xml",
        '<load module="mod_audio_fork"/>',
        "",
        "mod_audio_fork is not loaded",
    ),
    "no G.722": (
        "freeswitch/conf/vars.xml",
        "global_codec_prefs=G722,PCMU,PCMA,OPUS",
        "global_codec_prefs=PCMU,PCMA,OPUS",
        "inbound-codec-prefs lacks G722",
    ),
    "the fork password set by the dialplan": (
        DIALPLAN,
        '<action application="set" data="playback_terminators=none"/>',
        '<action application="set" data="playback_terminators=none"/>\n'
        '        <action application="set" data="MOD_AUDIO_BASIC_AUTH_PASSWORD=$${fork_password}"/>',
        "a dialplan action carries FORK_PASSWORD",
    ),
    "a transfer target without a route": (
        "prompts/clinic/clinic.yaml",
        'transfer_target: "operator XML transfer"',
        'transfer_target: "1000 XML default"',
        "has no route in freeswitch/conf",
    ),
    "a transfer route that bridges nowhere": (
        "freeswitch/conf/dialplan/transfer.xml",
        '<action application="bridge" data="$${operator_destination}"/>',
        "",
        "bridges the call to nobody",
    ),
    "fork credentials that are not the bridge's": (
        "freeswitch/conf/vars.xml",
        "MOD_AUDIO_BASIC_AUTH_PASSWORD=$${fork_password}",
        "MOD_AUDIO_BASIC_AUTH_PASSWORD=changeme",
        "the global MOD_AUDIO_BASIC_AUTH_PASSWORD does not come from FORK_PASSWORD",
    ),
}


@pytest.mark.parametrize("breakage", sorted(FREESWITCH_BREAKAGES))
def test_freeswitch_breakage_is_caught(repo: Path, breakage: str) -> None:
    assert check_freeswitch(repo) == []
    path, old, new, expected = FREESWITCH_BREAKAGES[breakage]
    edit(repo / path, old, new)
    problems = check_freeswitch(repo)
    assert any(expected in p for p in problems), "\n".join(problems) or "no problem found"


def test_the_entrypoint_refuses_values_the_configuration_cannot_carry() -> None:
    folder = ROOT / "freeswitch"
    with pytest.raises(fsconf.ConfError, match="ESL_PASSWORD is not set"):
        fsconf.render(folder, {"FORK_PASSWORD": "abc"})
    with pytest.raises(fsconf.ConfError, match="FORK_PASSWORD contains a character") as info:
        fsconf.render(folder, {"ESL_PASSWORD": "abc", "FORK_PASSWORD": 'pa"ss<word'})
    assert 'pa"ss' not in str(info.value)  # the message names the variable, never the value
    with pytest.raises(fsconf.ConfError, match="AUDIO_FORK must be jambonz or drachtio"):
        fsconf.render(folder, {"ESL_PASSWORD": "a", "FORK_PASSWORD": "b", "AUDIO_FORK": "x"})


def test_the_entrypoint_renders_the_environment_into_the_switch_globals() -> None:
    conf = fsconf.render(
        ROOT / "freeswitch",
        {
            "ESL_PASSWORD": "esl-1",
            "FORK_PASSWORD": "fork-1",
            "CARRIER_PROXY": "sip.example.net",
            "EXTERNAL_IP": "203.0.113.7",
            "AUDIO_FORK": "drachtio",
        },
    )
    assert conf.problems == []
    assert conf.globals["esl_password"] == "esl-1"
    assert conf.globals["external_rtp_ip"] == "203.0.113.7"
    assert conf.globals["carrier_realm"] == "sip.example.net"  # defaults to the proxy
    assert conf.globals["audio_fork_streaming"] == ""  # the upstream module: no streamed audio
    gateway = next(conf.root.iter("gateway"))
    params = {p.get("name"): p.get("value") for p in gateway.iter("param")}
    assert params["proxy"] == "sip.example.net"


# ---------------------------------------------------------------------------------- Dockerfiles

DOCKERFILE = "services/Dockerfile"

DOCKER_BREAKAGES: dict[str, tuple[str, str, str, str]] = {
    "an unpinned base": (
        DOCKERFILE,
        "ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm",
        "ARG PYTHON_IMAGE=python:latest",
        "base image 'python:latest' is not pinned",
    ),
    "running as root": (DOCKERFILE, "USER 10001:10001\n", "", "the final stage runs as root"),
    "a service folder that is not there": (
        "compose.yaml",
        "args: {SERVICE: notifier,",
        "args: {SERVICE: notify,",
        "COPY source 'services/notify' does not exist in the build context (building notifier)",
    ),
    "apt lists left in the image": (
        DOCKERFILE,
        "WORKDIR /app\n",
        "WORKDIR /app\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n",
        "DL3009",
    ),
    "a model list that is not there": (
        "compose.yaml",
        "MODELS: tts,",
        "MODELS: voices,",
        "MODELS=voices but requirements/lock/models-voices.txt does not exist (building tts)",
    ),
    "an image port the service does not listen on": (
        "compose.yaml",
        'SERVICE: notifier, PORT: "8085"',
        'SERVICE: notifier, PORT: "8086"',
        "PORT='8086' but notifier listens on 8085",
    ),
    "packages without dependencies from no lock file": (
        "compose.yaml",
        "NO_DEPS: models-nodeps}",
        "NO_DEPS: silero-vad==6.2.3}",
        "NO_DEPS=silero-vad==6.2.3 but requirements/lock/silero-vad==6.2.3.txt does not exist (building asr)",
    ),
    "a service without its lock": (
        "compose.yaml",
        'SERVICE: notifier, PORT: "8085"',
        'SERVICE: notifier_v2, PORT: "8085"',
        "SERVICE=notifier_v2 but its lock requirements/lock/notifier-v2.txt does not exist (building notifier)",
    ),
    "a build that names no service": (
        "compose.yaml",
        'args: {SERVICE: policy_engine, PORT: "8083"}',
        'args: {PORT: "8083"}',
        "build argument SERVICE has no default and the build does not set it (building policy)",
    ),
    "a misspelt build argument": (
        "compose.yaml",
        "DIRS: /data}",
        "DIR: /data}",
        "build argument DIR is set but the file declares no ARG DIR (building notifier)",
    ),
    "a wheels stage that does not exist": (
        "compose.yaml",
        "WHEELS: llama}",
        "WHEELS: llamas}",
        "FROM 'wheels-llamas' is neither a stage of this file nor an image (building llm)",
    ),
}


@pytest.mark.parametrize("breakage", sorted(DOCKER_BREAKAGES))
def test_dockerfile_breakage_is_caught(repo: Path, breakage: str) -> None:
    assert check_dockerfiles(repo) == []
    path, old, new, expected = DOCKER_BREAKAGES[breakage]
    edit(repo / path, old, new)
    problems = check_dockerfiles(repo)
    assert any(expected in p for p in problems), "\n".join(problems) or "no problem found"


def test_a_dockerfile_no_service_builds_is_reported(repo: Path) -> None:
    """A per-service Dockerfile left beside the shared one would silently go stale."""
    shutil.copy2(repo / DOCKERFILE, repo / "services" / "notifier" / "Dockerfile")
    problems = check_dockerfiles(repo)
    assert "services/notifier/Dockerfile: no service in compose.yaml builds it" in problems
