"""The call flow for people: ``ivr flow graph`` draws the menu tree from its data."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The call flow: the menus as a picture.")


class GraphFormat(StrEnum):
    SVG = "svg"
    DOT = "dot"
    MERMAID = "mermaid"


@app.command("graph")
def flow_graph(
    graph_format: Annotated[
        GraphFormat, typer.Option("--format", help="svg (needs Graphviz), dot or mermaid")
    ] = GraphFormat.SVG,
    province: Annotated[
        str | None, typer.Option(help="Whose place menus to draw (default: IVR_PROVINCE)")
    ] = None,
) -> None:
    """Print the menu tree: every node with its prompt text, every key, retry and timeout."""
    from ivr.flow.graph import flow_graph as build_graph
    from ivr.flow.graph import to_dot, to_mermaid
    from ivr.graphviz import GraphvizError, dot_to_svg
    from ivr.prompts import PromptError, load_catalog
    from ivr.provinces import all_provinces

    settings = get_settings()
    code = province or settings.province
    known = [p.code for p in all_provinces()]
    if code not in known:
        fail(f"no province {code!r}; known: {', '.join(known)}")
    try:
        texts = {pid: p.text for pid, p in load_catalog(settings.prompts_dir).items()}
    except PromptError as exc:
        fail(f"cannot read the prompt catalogue: {exc}")
    graph = build_graph(code, texts)
    if graph_format == GraphFormat.MERMAID:
        typer.echo(to_mermaid(graph), nl=False)
    elif graph_format == GraphFormat.DOT:
        typer.echo(to_dot(graph), nl=False)
    else:
        try:
            typer.echo(dot_to_svg(to_dot(graph)), nl=False)
        except GraphvizError as exc:
            fail(f"{exc} (or use --format dot or --format mermaid)")
