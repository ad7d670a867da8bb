"""The policy engine's Prometheus metrics: turn latency, LLM use, replays, outcomes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class PolicyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16)
        self.turn = Histogram(
            "policy_turn_seconds",
            "Event in to reply done, by whether the LLM was called.",
            ["llm"],
            buckets=buckets,
            registry=registry,
        )
        self.first_sentence = Histogram(
            "policy_first_sentence_seconds",
            "Event in to the first reply sentence, by whether the LLM was called.",
            ["llm"],
            buckets=buckets,
            registry=registry,
        )
        self.llm_calls = Histogram(
            "policy_llm_calls_per_turn",
            "LLM requests made by one turn.",
            buckets=(0, 1, 2, 3, 5),
            registry=registry,
        )
        self.degraded = Counter(
            "policy_llm_degraded_turns_total",
            "Turns that wanted the LLM but went on with the deterministic parsers alone.",
            registry=registry,
        )
        self.late = Counter(
            "policy_llm_late_turns_total",
            "Turns whose LLM work passed POLICY_LLM_DEADLINE_S: its result was dropped and the "
            "script went on.",
            registry=registry,
        )
        self.acknowledgements = Counter(
            "policy_acknowledgements_total",
            "Turns that said an acknowledgement first (nothing was ready within "
            "POLICY_ACK_AFTER_S).",
            registry=registry,
        )
        self.events = Counter(
            "policy_events_total", "Dialog events by type.", ["type"], registry=registry
        )
        self.replays = Counter(
            "policy_replayed_events_total",
            "Retried events answered from the stored response.",
            registry=registry,
        )
        self.calls = Counter(
            "policy_calls_completed_total",
            "Finished calls by status.",
            ["status"],
            registry=registry,
        )
        self.transitions = Counter(
            "policy_state_transitions_total",
            "FSM transitions by target state.",
            ["to"],
            registry=registry,
        )

    def call_finished(self, status: str) -> None:
        self.calls.labels(status).inc()
