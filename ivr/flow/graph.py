"""The menu tree as a graph, drawn from the same tables the engine walks (``menus.menus_for``).

Pure: the caller passes the catalogue's texts in, and gets Graphviz ``dot`` or Mermaid text
back (``ivr.graphviz`` turns dot into SVG). Nothing here repeats a menu's keys: a key added to
``menus.py`` is an edge here at once, so the picture people approve cannot drift from the flow.
What the engine decides in code rather than tables — where a ticket operation's answer leads,
retries, the third failure — is listed once below and checked against the engine by the tests.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.flow import menus

RESULTS: dict[str, tuple[tuple[str, str], ...]] = {
    "create_ticket": (("ticket created", "registered"),),
    "lookup_ticket": (
        ("caller ID = callback number", "followup.report"),
        ("otherwise (or no such ticket)", "followup.guard"),
    ),
    "check_followup": (
        ("tries left", "followup.verify"),
        ("too many failed tries (ticket or caller)", "agent.check"),
    ),
    "count_failed_followup": (
        ("tries left: retried", "followup.verify"),
        ("too many failed tries (ticket or caller)", "agent.check"),
    ),
    "check_agents": (
        ("agents answer now", "agent"),
        ("outside hours, nobody logged in, queue gave the call back", "no_agent"),
    ),
    "request_callback": (("callback filed", "recall.filed"),),
}
"""Where each ticket operation's answer leads (``engine._on_operation``)."""

FAILURE_TARGET = "agent.check"
"""Where the third failure in a row sends the caller (``engine._fail``)."""

NO_INPUT_PROMPT = "retry.no_input"
INVALID_KEY_PROMPT = "retry.invalid"
TOO_MANY_PROMPT = "retry.too_many"
WRAP = 44
"""Characters per line of a node's prompt text."""


@dataclass(frozen=True)
class GraphNode:
    name: str
    kind: str
    """menu, entry, recorder, branch, operation or transfer."""
    text: str
    """What the caller hears there: catalogue texts, slots as ‹name›."""
    detail: str = ""
    """What else there is to know: the digits an entry takes, the queue of a transfer."""


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    label: str
    """A key (``1``, ``*``) or what happened (``timeout 5 s``, ``3rd failure``)."""
    kind: str
    """key, valid, empty, recorded, branch, result (the flow goes on), or invalid, timeout,
    too_short, too_many (the caller is asked again or handed to an agent)."""
    said: str = ""
    """What the caller hears on the way (a retry prompt, their own recording)."""

    @property
    def is_retry(self) -> bool:
        return self.kind in ("invalid", "timeout", "too_short", "too_many")


@dataclass(frozen=True)
class FlowGraph:
    province: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def flow_graph(province: str, texts: Mapping[str, str]) -> FlowGraph:
    """Every node of the province's menus, every key and every retry, timeout and failure edge."""
    tree = menus.menus_for(province)
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    for name, node in tree.items():
        say = _words(getattr(node, "prompts", ()), texts)
        match node:
            case menus.Menu():
                nodes.append(GraphNode(name, "menu", say))
                for key, go in node.choices.items():
                    edges.append(_go(name, go, key, "key", texts))
                edges += _failures(
                    name,
                    texts,
                    INVALID_KEY_PROMPT,
                    "invalid key",
                    timeout=True,
                    third=node.gave_up.target if node.gave_up else FAILURE_TARGET,
                )
            case menus.Entry():
                optional = ", # alone skips" if node.on_empty else ""
                detail = f"up to {node.max_digits} digits and #{optional}; check: {node.check}"
                nodes.append(GraphNode(name, "entry", say, detail))
                edges.append(_go(name, node.on_valid, f"valid {node.check}", "valid", texts))
                if node.on_rejected is not None:
                    edges.append(_go(name, node.on_rejected, "refused: counted", "invalid", texts))
                if node.on_empty is not None:
                    edges.append(_go(name, node.on_empty, "# alone", "empty", texts))
                edges += _failures(name, texts, node.invalid_prompt, "invalid", timeout=True)
            case menus.Recorder():
                detail = f"up to {menus.RECORD_MAX_S} s, ended with #"
                nodes.append(GraphNode(name, "recorder", say, detail))
                label = f"recording ≥ {menus.RECORD_MIN_S:g} s"
                edges.append(_go(name, node.on_done, label, "recorded", texts))
                short = node.too_short_prompt
                edges += _failures(name, texts, short, "too short", kind="too_short")
            case menus.Branch():
                nodes.append(GraphNode(name, "branch", "", f"test: {node.test}"))
                edges.append(_go(name, node.yes, f"{node.test}: yes", "branch", texts))
                edges.append(_go(name, node.no, f"{node.test}: no", "branch", texts))
            case menus.Operation():
                nodes.append(GraphNode(name, "operation", "", node.operation))
                for label, target in RESULTS[node.operation]:
                    edges.append(GraphEdge(name, target, label, "result"))
            case menus.Transfer():
                nodes.append(GraphNode(name, "transfer", say, f"queue {node.queue}"))
                label = "Twilio: left with key 1"
                edges.append(GraphEdge(name, "recall", label, "result"))
            case menus.Goodbye():
                nodes.append(GraphNode(name, "goodbye", say, "then hangs up"))
    return FlowGraph(province, tuple(nodes), tuple(edges))


def _go(source: str, go: menus.Go, label: str, kind: str, texts: Mapping[str, str]) -> GraphEdge:
    target = go.target or source  # REPEAT: the node says itself again
    return GraphEdge(source, target, label, kind, _words(go.say, texts))


def _failures(
    name: str,
    texts: Mapping[str, str],
    prompt: str,
    label: str,
    *,
    kind: str = "invalid",
    timeout: bool = False,
    third: str = FAILURE_TARGET,
) -> list[GraphEdge]:
    edges = [GraphEdge(name, name, label, kind, _text(prompt, texts))]
    if timeout:
        silence = f"timeout {menus.MENU_TIMEOUT_S} s"
        edges.append(GraphEdge(name, name, silence, "timeout", _text(NO_INPUT_PROMPT, texts)))
    label = f"failure {menus.MAX_FAILURES} in a row"
    edges.append(GraphEdge(name, third, label, "too_many", _text(TOO_MANY_PROMPT, texts)))
    return edges


def _text(prompt_id: str, texts: Mapping[str, str]) -> str:
    return texts.get(prompt_id, prompt_id)


def _words(parts: tuple[menus.Part, ...], texts: Mapping[str, str]) -> str:
    return " ".join(
        f"‹{part.name}›" if isinstance(part, menus.Slot) else _text(part, texts) for part in parts
    )


# --- Graphviz ----------------------------------------------------------------------------

_FILL = {
    "menu": "#e8f1fb",
    "entry": "#fdf3e1",
    "recorder": "#fde8e8",
    "branch": "#eeeeee",
    "operation": "#e6f6ea",
    "transfer": "#efe6fa",
    "goodbye": "#f0f0f0",
}
_SHAPE = {"branch": "diamond", "operation": "component"}


def to_dot(graph: FlowGraph) -> str:
    """Graphviz text: one line per node, one ``->`` line per edge (keys, results, retries)."""
    lines = [
        f"digraph {_quote('124-' + graph.province)} {{",
        '  graph [rankdir=TB, fontname="Vazirmatn", nodesep=0.4, ranksep=0.5];',
        '  node [shape=box, style="rounded,filled", fontname="Vazirmatn", fontsize=10];',
        '  edge [fontname="Vazirmatn", fontsize=9];',
    ]
    for node in graph.nodes:
        label = "\n".join(_node_lines(node))
        attrs = [f"label={_quote(label)}", f'fillcolor="{_FILL[node.kind]}"']
        if node.kind in _SHAPE:
            attrs.append(f"shape={_SHAPE[node.kind]}")
        if node.name == "main":
            attrs.append("peripheries=2")  # where every call starts
        lines.append(f"  {_quote(node.name)} [{', '.join(attrs)}];")
    for edge in graph.edges:
        label = edge.label if not edge.said else f"{edge.label}\n{_wrap(edge.said, 30)}"
        attrs = [f"label={_quote(label)}"]
        if edge.is_retry:
            attrs += ["style=dashed", 'color="#888888"', 'fontcolor="#666666"']
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_lines(node: GraphNode) -> list[str]:
    lines = [f"{node.name} ({node.kind})"]
    if node.detail:
        lines.append(node.detail)
    if node.text:
        lines.append(_wrap(node.text, WRAP))
    return lines


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# --- Mermaid -----------------------------------------------------------------------------


def to_mermaid(graph: FlowGraph) -> str:
    """A Mermaid flowchart with the same nodes and edges (retries drawn dotted)."""
    lines = ["flowchart TD"]
    for node in graph.nodes:
        label = "<br/>".join(_mermaid_text(line) for line in _node_lines(node))
        opening, closing = ("{", "}") if node.kind == "branch" else ("[", "]")
        lines.append(f'  {_mermaid_id(node.name)}{opening}"{label}"{closing}')
    for edge in graph.edges:
        arrow = "-.->" if edge.is_retry else "-->"
        label = _mermaid_text(edge.label)
        source, target = _mermaid_id(edge.source), _mermaid_id(edge.target)
        lines.append(f'  {source} {arrow}|"{label}"| {target}')
    return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def _mermaid_text(text: str) -> str:
    for raw, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, entity)
    return text.replace("\n", "<br/>")
