"""The bridge's Prometheus metrics: calls, refused forks and calls, first-audio latencies,
yields, resumptions and barge-ins, answering-machine verdicts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.active = Gauge("bridge_calls_active", "Calls in progress.", registry=registry)
        self.calls = Counter(
            "bridge_calls_total", "Calls whose audio fork connected.", registry=registry
        )
        self.refused = Counter(
            "bridge_fork_refused_total",
            "Fork connections refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.calls_refused = Counter(
            "bridge_calls_refused_total",
            "Calls that heard the busy phrase because BRIDGE_MAX_CALLS calls were in progress.",
            registry=registry,
        )
        buckets = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
        self.greeting = Histogram(
            "bridge_answer_to_greeting_seconds",
            "Fork connected (call answered) to the greeting's first audio sent.",
            buckets=buckets,
            registry=registry,
        )
        self.turn_first_audio = Histogram(
            "bridge_turn_first_audio_seconds",
            "Caller's final transcript to the reply's first audio sent.",
            buckets=buckets,
            registry=registry,
        )
        self.barge_ins = Counter(
            "bridge_barge_ins_total", "Agent playback stopped by the caller.", registry=registry
        )
        self.yields = Counter(
            "bridge_yields_total",
            "Times the agent went quiet because the caller's voice began over it.",
            registry=registry,
        )
        self.resumes = Counter(
            "bridge_resumes_total",
            "Yields that were no interruption (a backchannel, a cough): the agent went on.",
            registry=registry,
        )
        self.amd_verdicts = Counter(
            "bridge_amd_verdicts_total",
            "Outbound answers by who answered (human, machine, unknown) and the cue that told.",
            ["answered_by", "cue"],
            registry=registry,
        )
        self.amd_seconds = Histogram(
            "bridge_amd_verdict_seconds",
            "Outbound answer to the answering-machine verdict.",
            buckets=(0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10),
            registry=registry,
        )
        self.esl_up = Gauge(
            "bridge_esl_connected", "1 while the Event Socket is connected.", registry=registry
        )
