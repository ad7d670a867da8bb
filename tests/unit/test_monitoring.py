"""The monitoring config (deploy/monitoring) reads only metrics the services really export.

The exported series are found by scanning the Counter/Gauge/Histogram/Summary definitions in the
services' and packages' source and asking prometheus_client which series each one exposes
(importing every service would cost seconds: LangGraph, the OpenAI SDK). One test checks the scan
against the real registries of the services that import quickly.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS = MONITORING / "prometheus.yml"
ALERTS = MONITORING / "alerts.yml"
GRAFANA = MONITORING / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "voice-agent.json"
SOURCE_ROOTS = (ROOT / "services", ROOT / "packages")
SKIPPED_DIRS = {"tests", ".venv", "build", "dist", "__pycache__"}

# Compose service name (= Prometheus job) → the address Prometheus scrapes.
SCRAPE_TARGETS = {
    "asr": "asr:8081",
    "tts": "tts:8082",
    "policy": "policy:8083",
    "llm": "llm:8000",
    "notifier": "notifier:8085",
    "fs-bridge": "fs-bridge:8080",
    "dialer": "dialer:8086",
}
DATASOURCE_UID = "prometheus"

METRIC_TYPES: dict[str, Any] = {
    "Counter": Counter,
    "Gauge": Gauge,
    "Histogram": Histogram,
    "Summary": Summary,
}
# Series that exist without any service defining them: Prometheus's own, and those of the
# process collector every service's registry carries (callkit.http.ServiceMetrics).
PROCESS_SERIES = {
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
}
BUILTIN_SERIES = {"up"} | PROCESS_SERIES
# vLLM's own metrics (gpu profile only); the repository does not define them.
FOREIGN_PREFIXES = ("vllm:",)

PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


# ---------------------------------------------------------------------------- exported series


@functools.cache
def metric_definitions(roots: tuple[Path, ...]) -> list[tuple[str, str, Path]]:
    """(type, name, file) of every prometheus_client metric constructed in the source.

    A definition whose name is not a string literal makes the scan fail instead of being missed.
    """
    found: list[tuple[str, str, Path]] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if SKIPPED_DIRS.intersection(path.relative_to(root).parts):
                continue
            found.extend(_definitions_in(path))
    return found


def _definitions_in(path: Path) -> Iterator[tuple[str, str, Path]]:
    text = path.read_text(encoding="utf-8")
    if "prometheus_client" not in text:  # no metric class can be in scope: skip the parse
        return
    tree = ast.parse(text, filename=str(path))
    direct: dict[str, str] = {}  # local name → prometheus_client class name
    modules: set[str] = set()  # local names of the prometheus_client module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client":
            for alias in node.names:
                if alias.name in METRIC_TYPES or alias.name in ("Info", "Enum"):
                    direct[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "prometheus_client":
                    modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kind = None
        if isinstance(node.func, ast.Name):
            kind = direct.get(node.func.id)
        elif (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in modules
        ):
            kind = node.func.attr
        if kind not in (*METRIC_TYPES, "Info", "Enum"):
            continue
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if kind not in METRIC_TYPES:
            raise AssertionError(f"{where}: {kind} metrics are not handled by this scan yet")
        if any(k.arg in ("namespace", "subsystem", "unit") for k in node.keywords):
            raise AssertionError(f"{where}: namespace/subsystem/unit are not handled by this scan")
        name_node = node.args[0] if node.args else None
        for keyword in node.keywords:
            if keyword.arg == "name":
                name_node = keyword.value
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            raise AssertionError(f"{where}: {kind} name is not a string literal; cannot check it")
        yield kind, name_node.value, path


def series_of(kind: str, name: str) -> tuple[str, set[str]]:
    """prometheus_client's own answer: the family name and the series names one metric exposes."""
    registry = CollectorRegistry()
    METRIC_TYPES[kind](name, "scan", registry=registry)
    (family,) = registry.collect()
    return family.name, {sample.name for sample in family.samples}


@functools.cache
def exported_series() -> frozenset[str]:
    series: set[str] = set()
    for kind, name, _ in metric_definitions(SOURCE_ROOTS):
        series |= series_of(kind, name)[1]
    return frozenset(series)


# ---------------------------------------------------------------------------- PromQL


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: not functions, keywords, label names or durations."""
    if "__name__" in expr:
        raise ValueError(f"select metrics by plain name so they can be checked: {expr}")
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, is_call = match.group(1), match.group(2)
        if is_call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query, rows' nested panels included."""
    found = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((f"panel {panel.get('title')!r}", target["expr"]))
    return found


def alert_exprs(rules: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"rule {rule.get('alert') or rule.get('record')!r}", str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def unknown_metrics(exprs: Iterable[tuple[str, str]], known: Iterable[str]) -> list[str]:
    """'where: name' for every selected metric that no service exports."""
    known = set(known)
    problems = []
    for where, expr in exprs:
        for name in sorted(metric_names(expr)):
            if name in BUILTIN_SERIES or name.startswith(FOREIGN_PREFIXES) or name in known:
                continue
            problems.append(f"{where}: {name}")
    return problems


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


@functools.cache
def _dashboard_text() -> str:
    return DASHBOARD.read_text(encoding="utf-8")


def load_dashboard() -> dict[str, Any]:
    return json.loads(_dashboard_text())  # type: ignore[no-any-return]


def load_alerts() -> dict[str, Any]:
    return yaml.safe_load(ALERTS.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- the checks


def test_the_scan_finds_the_metrics_of_every_service() -> None:
    series = exported_series()
    for expected in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "bridge_turn_first_audio_seconds_bucket",
        "bridge_esl_connected",
        "asr_final_delay_seconds_bucket",
        "asr_queue_depth",
        "tts_first_byte_seconds_bucket",
        "policy_first_sentence_seconds_bucket",
        "policy_llm_up",  # defined inline in policy_engine/app.py, not in a metrics class
        "llm_time_to_first_token_seconds_bucket",
        "notifier_dead_entries_total",
    ):
        assert expected in series
    assert "bridge_calls" not in series  # a counter's family name is not a series
    assert "tts_first_byte_seconds" not in series  # nor is a histogram's


def test_the_scan_agrees_with_the_real_registries() -> None:
    """The metrics classes that import quickly (not FastAPI, LangGraph or the OpenAI SDK)."""
    from asr_gateway.scheduler import AsrMetrics
    from notifier.consumer import NotifierMetrics
    from tts_gateway.synthesizer import TtsMetrics

    registry = CollectorRegistry()
    AsrMetrics(registry)
    NotifierMetrics(registry)
    TtsMetrics(registry)
    real = {(family.name, family.type) for family in registry.collect()}

    files = {
        ROOT / "services/asr_gateway/asr_gateway/scheduler.py",
        ROOT / "services/notifier/notifier/consumer.py",
        ROOT / "services/tts_gateway/tts_gateway/synthesizer.py",
    }
    scanned = {
        (series_of(kind, name)[0], kind.lower())
        for kind, name, path in metric_definitions(SOURCE_ROOTS)
        if path in files
    }
    assert scanned == real


def test_dashboard_and_alerts_read_only_exported_metrics() -> None:
    exprs = dashboard_exprs(load_dashboard()) + alert_exprs(load_alerts())
    assert len(exprs) > 40
    assert unknown_metrics(exprs, exported_series()) == []


@pytest.mark.parametrize(
    ("source", "right", "wrong"),
    [
        (
            "dashboard",
            "bridge_turn_first_audio_seconds_bucket",
            "bridge_turn_first_audio_second_bucket",
        ),
        ("dashboard", "notifier_rows_appended_total", "notifier_rows_appended"),
        ("alerts", "asr_queue_depth", "asr_queue_length"),
        ("alerts", "policy_llm_up", "policy_llm_upp"),
    ],
)
def test_a_misspelled_metric_is_caught(source: str, right: str, wrong: str) -> None:
    if source == "dashboard":
        original = load_dashboard()
        changed = copy.deepcopy(original)
        for panel in _panels(changed):
            for target in panel.get("targets", []):
                target["expr"] = target.get("expr", "").replace(right, wrong)
        before, after = dashboard_exprs(original), dashboard_exprs(changed)
    else:
        original = load_alerts()
        changed = copy.deepcopy(original)
        for group in changed["groups"]:
            for rule in group["rules"]:
                rule["expr"] = str(rule["expr"]).replace(right, wrong)
        before, after = alert_exprs(original), alert_exprs(changed)
    assert before != after, f"{right} is not used in the {source}"
    assert unknown_metrics(before, exported_series()) == []
    problems = unknown_metrics(after, exported_series())
    assert problems
    assert all(p.endswith(f": {wrong}") for p in problems)


def test_metric_names_skip_functions_keywords_labels_and_durations() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, kind) (rate(asr_inference_seconds_bucket{kind="final",'
        'job=~"asr|tts"}[5m] offset 1h))) > on (job) group_left (instance) up '
        "and ignoring (reason) sum without (status) (increase(x_total[$__range])) > 1e3 "
        'unless vllm:num_requests_running + label_replace(y, "dst", "$1", "src", "(.*)")'
    )
    assert metric_names(expr) == {
        "asr_inference_seconds_bucket",
        "up",
        "x_total",
        "vllm:num_requests_running",
        "y",
    }
    with pytest.raises(ValueError, match="plain name"):
        metric_names('{__name__="bridge_calls_total"}')


def test_histogram_quantiles_read_bucket_series_summed_by_le() -> None:
    exprs = dashboard_exprs(load_dashboard()) + alert_exprs(load_alerts())
    quantiles = [(w, e) for w, e in exprs if "histogram_quantile" in e]
    assert quantiles
    for where, expr in quantiles:
        for part in expr.split("histogram_quantile")[1:]:
            assert re.search(r"sum by \((?:[\w, ]+, )?le\) \(rate\([\w:]+_bucket[{\[]", part), (
                f"{where}: {expr}"
            )


def test_dashboard_panels_use_the_provisioned_datasource_and_unique_ids() -> None:
    dashboard = json.loads(_dashboard_text())  # valid JSON
    assert dashboard["uid"] == "voice-agent"
    assert dashboard["title"]
    panels = list(_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
            assert target["expr"].strip(), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    # Every vLLM panel says that its series exist only with the gpu profile.
    for panel in panels:
        if any("vllm:" in t.get("expr", "") for t in panel.get("targets", [])):
            assert "gpu profile" in panel["description"], panel["title"]


def test_prometheus_scrapes_exactly_the_seven_services() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    targets: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        assert job["job_name"] not in targets, f"job {job['job_name']} twice"
        targets[job["job_name"]] = [t for s in job["static_configs"] for t in s["targets"]]
        interval = job.get("scrape_interval", config["global"]["scrape_interval"])
        timeout = job.get("scrape_timeout", config["global"]["scrape_timeout"])
        assert _seconds(timeout) <= _seconds(interval), job["job_name"]
    assert targets == {job: [address] for job, address in SCRAPE_TARGETS.items()}
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_alert_rules_are_complete() -> None:
    rules = [rule for group in load_alerts()["groups"] for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    assert exprs["ServiceDown"] == "up == 0"
    assert exprs["EslDisconnected"] == "bridge_esl_connected == 0"
    assert exprs["PolicyLlmDown"] == "policy_llm_up == 0"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    (source,) = datasources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        DATASOURCE_UID,
        "prometheus",
        "http://prometheus:9090",
    )
    providers = yaml.safe_load(
        (GRAFANA / "provisioning/dashboards/voice-agent.yml").read_text(encoding="utf-8")
    )
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    value, unit = int(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60}[unit]


async def test_every_service_exports_its_process_memory_cpu_and_descriptors() -> None:
    """The dashboard's Processes row and the process alerts read these from every job."""
    import httpx  # here, not above: the other tests of this file import no web stack

    from callkit.http import create_service_app

    app = create_service_app("probe")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        text = (await client.get("/metrics")).text
    samples = {line.split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    assert samples >= PROCESS_SERIES
    rss = next(line for line in text.splitlines() if line.startswith("process_resident_memory"))
    assert float(rss.split(" ")[1]) > 10 * 2**20  # a Python process holds megabytes
    # Every service's /metrics is that shell's: its app is built by create_service_app or
    # install_ops, which put the process collector on the service's registry.
    for app_py in sorted((ROOT / "services").glob("*/*/app.py")):
        if "build" in app_py.parts:
            continue
        source = app_py.read_text(encoding="utf-8")
        assert "create_service_app(" in source or "install_ops(" in source, app_py
