"""The menu tree drawn from its data: every node, every key, every retry and timeout edge, and a
change in the menu tables changes the drawing (it is generated, never kept by hand)."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from refusals import refusal

from ivr.flow import CallState, advance
from ivr.flow import menus as m
from ivr.flow.events import (
    AgentsChecked,
    CallbackFiled,
    CallStarted,
    TicketCreated,
    TicketLookedUp,
)
from ivr.flow.graph import RESULTS, flow_graph, to_dot, to_mermaid
from ivr.prompts import load_catalog

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
TEXTS = {pid: prompt.text for pid, prompt in load_catalog(PROMPTS_DIR).items()}
PROVINCE = "qom"
EDGE = re.compile(r'^\s*"(?P<source>[^"]+)" -> "(?P<target>[^"]+)" \[label="(?P<label>[^"]*)"')
NODE = re.compile(r'^\s*"(?P<name>[^"]+)" \[label="(?P<label>(?:[^"\\]|\\.)*)"')


def dot_edges(dot: str) -> list[tuple[str, str, str]]:
    """(source, target, first line of the label) of every ``->`` line."""
    edges = []
    for line in dot.splitlines():
        if "->" in line:
            found = EDGE.match(line)
            assert found, f"an edge line that is not one edge: {line}"
            label = found["label"].split("\\n")[0]
            edges.append((found["source"], found["target"], label))
    return edges


def dot_nodes(dot: str) -> dict[str, str]:
    nodes = {}
    for line in dot.splitlines():
        found = NODE.match(line)
        if found and "->" not in line:
            nodes[found["name"]] = found["label"].replace("\\n", " ")
    return nodes


def key_edges(tree: dict[str, m.Node]) -> set[tuple[str, str, str]]:
    """What the menu data says: (menu, where the key leads, key) for every key of every menu."""
    return {
        (name, go.target or name, key)
        for name, node in tree.items()
        if isinstance(node, m.Menu)
        for key, go in node.choices.items()
    }


def test_every_node_appears_with_its_prompt_text() -> None:
    tree = m.menus_for(PROVINCE)
    nodes = dot_nodes(to_dot(flow_graph(PROVINCE, TEXTS)))
    assert set(nodes) == set(tree)
    for name, node in tree.items():
        for part in getattr(node, "prompts", ()):
            if isinstance(part, m.Slot):
                assert f"‹{part.name}›" in nodes[name]
            else:  # wrapped over lines, so compare without the line breaks
                assert TEXTS[part].replace(" ", "") in nodes[name].replace(" ", ""), name


def test_every_key_edge_appears_once() -> None:
    tree = m.menus_for(PROVINCE)
    edges = dot_edges(to_dot(flow_graph(PROVINCE, TEXTS)))
    expected = key_edges(tree)
    keys = [edge for edge in edges if edge in expected]
    assert sorted(keys) == sorted(expected)  # each exactly once
    menus = [n for n in tree.values() if isinstance(n, m.Menu)]
    assert len(expected) == sum(len(n.choices) for n in menus)  # no two keys drawn as one


def test_retry_timeout_and_failure_edges_for_every_node_that_waits() -> None:
    tree = m.menus_for(PROVINCE)
    graph = flow_graph(PROVINCE, TEXTS)
    edges = set(dot_edges(to_dot(graph)))
    for name, node in tree.items():
        gave_up = getattr(node, "gave_up", None)
        target = gave_up.target if gave_up else "agent.check"  # no_agent ends politely
        third = (name, target, f"failure {m.MAX_FAILURES} in a row")
        if isinstance(node, m.Menu):
            assert {(name, name, "invalid key"), (name, name, "timeout 5 s"), third} <= edges
        elif isinstance(node, m.Entry):
            assert {(name, name, "invalid"), (name, name, "timeout 5 s"), third} <= edges
            assert (name, node.on_valid.target, f"valid {node.check}") in edges
            if node.on_empty:
                assert (name, node.on_empty.target, "# alone") in edges
        elif isinstance(node, m.Recorder):
            assert {(name, name, "too short"), third} <= edges
            assert (name, node.on_done.target, "recording ≥ 2 s") in edges
        elif isinstance(node, m.Branch):
            assert (name, node.yes.target, f"{node.test}: yes") in edges
            assert (name, node.no.target, f"{node.test}: no") in edges
    # the retry edges say what the caller hears
    retry = next(e for e in graph.edges if e.source == "main" and e.kind == "timeout")
    assert retry.said == TEXTS["retry.no_input"]
    entry = next(e for e in graph.edges if e.source == "nid" and e.kind == "invalid")
    assert entry.said == TEXTS["nid.invalid"]


def test_operation_edges_are_where_the_engine_sends_the_answers() -> None:
    """The one part of the drawing not read from the menu tables, checked against the engine."""
    from flow_helpers import MOBILE, OTHER_MOBILE, TRACKING, ticket

    start = advance(CallState(), CallStarted(MOBILE, "124", "twilio", PROVINCE)).state
    created = advance(replace(start, node="register"), TicketCreated(TRACKING)).state.node
    assert [target for _, target in RESULTS["create_ticket"]] == [created]

    lookup = replace(start, node="followup.lookup", tracking=TRACKING)
    same = advance(lookup, TicketLookedUp(ticket(callback=MOBILE))).state.node
    other = advance(lookup, TicketLookedUp(ticket(callback=OTHER_MOBILE))).state.node
    missing = advance(lookup, TicketLookedUp(None)).state.node
    assert [target for _, target in RESULTS["lookup_ticket"]] == [same, other]
    assert missing == other
    check = replace(start, node="agent.check")
    answers = [AgentsChecked(True), AgentsChecked(False)]
    targets = [advance(check, answer).state.node for answer in answers]
    assert [target for _, target in RESULTS["check_agents"]] == targets
    filed = advance(replace(start, node="recall.request"), CallbackFiled(1)).state.node
    assert [target for _, target in RESULTS["request_callback"]] == [filed]
    operations = {n.operation for n in m.menus_for(PROVINCE).values() if isinstance(n, m.Operation)}
    assert operations == set(RESULTS)


def test_a_change_in_the_menu_data_changes_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    before = to_dot(flow_graph(PROVINCE, TEXTS))
    tree = dict(m.menus_for(PROVINCE))
    main = tree["main"]
    assert isinstance(main, m.Menu)
    choices = {key: go for key, go in main.choices.items() if key != "0"}  # no agent from main
    choices["7"] = m.Go("followup.enter")  # and a new key for follow-ups
    tree["main"] = m.Menu(main.prompts, choices)
    tree["survey"] = m.Menu(("retry.no_input",), {"1": m.Go("main")})
    monkeypatch.setattr(m, "menus_for", lambda province: tree)

    after = to_dot(flow_graph(PROVINCE, TEXTS))
    assert after != before
    edges = dot_edges(after)
    assert ("main", "followup.enter", "7") in edges
    assert ("main", "agent.check", "0") not in edges
    assert ("main", "agent.check", "0") in dot_edges(before)
    assert ("survey", "main", "1") in edges
    assert "survey" in dot_nodes(after)
    assert 'n_main -->|"7"| n_followup_enter' in to_mermaid(flow_graph(PROVINCE, TEXTS))


def test_mermaid_has_the_same_edges_as_dot() -> None:
    graph = flow_graph(PROVINCE, TEXTS)
    mermaid = to_mermaid(graph)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart TD"
    arrows = [line for line in lines if "-->" in line or "-.->" in line]
    assert len(arrows) == len(dot_edges(to_dot(graph))) == len(graph.edges)
    assert '  n_main -->|"1"| n_category' in lines
    assert '  n_main -.->|"timeout 5 s"| n_main' in lines
    assert not any('"' in line.split('"', 1)[1].rsplit('"', 1)[0] for line in arrows)


def test_cli_prints_dot_with_one_edge_per_key_or_retry(
    ivr_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    dot = ivr_cli("flow", "graph", "--format", "dot").stdout
    assert dot.startswith('digraph "124-qom" {') and dot.rstrip().endswith("}")
    graph = flow_graph(PROVINCE, TEXTS)
    assert dot == to_dot(graph)
    assert dot.count("->") == len(graph.edges)
    assert key_edges(m.menus_for(PROVINCE)) <= set(dot_edges(dot))


def test_cli_svg_and_mermaid(ivr_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    svg = ivr_cli("flow", "graph").stdout  # svg is the default
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    assert set(m.menus_for(PROVINCE)) <= titles  # Graphviz titles each node with its name
    assert TEXTS["retry.no_input"] in svg
    mermaid = ivr_cli("flow", "graph", "--format", "mermaid", "--province", "qom").stdout
    assert mermaid.startswith("flowchart TD\n")


def test_cli_refuses_unknown_province_and_format_in_one_line(
    ivr_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    done = ivr_cli("flow", "graph", "--province", "atlantis", check=False)
    assert refusal(done, "flow graph") == "no province 'atlantis'; known: qom"
    bad = ivr_cli("flow", "graph", "--format", "png", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "png" in bad.stderr


def test_cli_without_graphviz_says_how_to_get_it(ivr_env: dict[str, str], tmp_path: Path) -> None:
    """With no ``dot`` on PATH: one line naming the package, and the text formats still work."""
    import shutil
    import sys

    bin_dir = tmp_path / "bin"  # a PATH with nothing on it: no dot
    bin_dir.mkdir()
    env = dict(ivr_env, PATH=str(bin_dir))
    ivr = shutil.which("ivr", path=str(Path(sys.executable).parent))
    assert ivr
    done = subprocess.run(
        [sys.executable, ivr, "flow", "graph"], env=env, capture_output=True, text=True
    )
    assert "apt-get install graphviz" in refusal(done, "flow graph")
    dot = subprocess.run(
        [sys.executable, ivr, "flow", "graph", "--format", "dot"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert dot.returncode == 0 and dot.stdout.startswith("digraph")
