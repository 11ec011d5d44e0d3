"""The menu tree drawn with the day's figures on it: each node says how many calls reached it and
how many callers hung up there (``ivr.flow.graph`` knows the tree, ``ivr.graphviz`` draws it).

Retry edges are left out (the figures already count wrong keys and silences per node), so the
picture stays readable; nodes no call reached that day are drawn pale.
"""

from __future__ import annotations

from dataclasses import replace

from ivr.clock import fa_digits
from ivr.flow.graph import FlowGraph, flow_graph, to_dot
from ivr.graphviz import dot_to_svg
from ivr.reports.definitions import report_words
from ivr.reports.figures import Figures


def figures_graph(figures: Figures, province: str) -> FlowGraph:
    """``province``'s menu graph, each node's detail replaced by the day's reach and drop-off."""
    words = report_words().text
    tree = flow_graph(province, {})
    by_node = {n.node: n for n in figures.nodes}
    nodes = []
    for node in tree.nodes:
        seen = by_node.get(node.name)
        reached, dropped = (seen.reached, seen.dropped) if seen else (0, 0)
        rate = f" ({dropped / reached * 100:.0f}%)" if reached else ""
        detail = fa_digits(f"{words['reached']} {reached} · {words['dropped']} {dropped}{rate}")
        nodes.append(replace(node, text="", detail=detail))
    edges = tuple(edge for edge in tree.edges if not edge.is_retry)
    return FlowGraph(tree.province, tuple(nodes), edges)


def menu_tree_svg(figures: Figures, province: str) -> str:
    """The SVG (no XML prolog), for the desk page and the report."""
    svg = dot_to_svg(to_dot(figures_graph(figures, province)))
    return svg[svg.index("<svg") :]
