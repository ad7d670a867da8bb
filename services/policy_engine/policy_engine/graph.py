"""The clinic script compiled into a LangGraph StateGraph.

One turn of the call is one run of the graph: it enters at ``understand``, ``silence`` or
``resume`` and walks the script's states (``dialog/nodes.py``) until a question waits for the
caller or the call ends. Every script state is one node; routers only read ``goto``.
"""

from __future__ import annotations

from typing import Any, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from policy_engine.dialog import nodes
from policy_engine.dialog.context import Turn
from policy_engine.dialog.state import DialogState, Entry
from policy_engine.script import EXIT_INTENTS, SILENCE_EXIT, Script

DialogGraph = StateGraph[DialogState, Turn, DialogState, DialogState]
CompiledDialog = CompiledStateGraph[DialogState, Turn, DialogState, DialogState]


def entry(state: DialogState) -> Entry:
    return state.get("entry", "resume")


def route(state: DialogState) -> str:
    """The node the last one named; the targets are the script's states, so not a Literal."""
    return state["goto"]


def build_graph(script: Script) -> DialogGraph:
    """The uncompiled graph: one node per script state, plus the turn's entry and answer nodes."""
    graph: DialogGraph = StateGraph(DialogState, context_schema=Turn)
    graph.add_node("understand", nodes.understand)
    graph.add_node("silence", nodes.silence)
    graph.add_node("resume", nodes.resume)
    graph.add_node("answer", nodes.answer)
    makers = {
        "question": nodes.question_node,
        "announce": nodes.announce_node,
        "exit": nodes.exit_node,
        "end": nodes.end_node,
    }
    states = list(script.states.values())
    for state_def in states:
        graph.add_node(state_def.id, cast(Any, makers[state_def.kind](state_def)))
    exits = sorted({*EXIT_INTENTS.values(), SILENCE_EXIT})
    graph.add_conditional_edges(
        START, entry, {"understand": "understand", "silence": "silence", "resume": "resume"}
    )
    graph.add_conditional_edges(
        "understand", route, {name: name for name in ["answer", "resume", *exits]}
    )
    graph.add_conditional_edges("silence", route, {"resume": "resume", SILENCE_EXIT: SILENCE_EXIT})
    graph.add_edge("answer", "resume")
    graph.add_conditional_edges(
        "resume",
        route,
        {s.id: s.id for s in states if s.kind in ("question", "announce", "exit", "end")},
    )
    for state_def in states:
        targets = {tr.to for tr in state_def.transitions}
        if state_def.kind == "question":
            targets |= {"resume", END}
        if state_def.kind == "exit":
            targets.add("resume")
        if state_def.kind == "end":
            targets = {END}
        graph.add_conditional_edges(state_def.id, route, {x: x for x in sorted(targets)})
    return graph


def compile_graph(script: Script) -> CompiledDialog:
    return build_graph(script).compile(name="clinic_script")


def mermaid(script: Script) -> str:
    return compile_graph(script).get_graph().draw_mermaid()
