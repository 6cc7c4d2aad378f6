"""Render a blueprint's module tree as a Mermaid flowchart (``graph.to_mermaid()``).

Every stage is a node labelled with its name; every wire is an edge labelled
``outlet -> inlet``; ports the graph leaves open become small round nodes. Long linear
chains are walked iteratively, as the materializer does.
"""

from __future__ import annotations

from typing import Any

from .._impl.modules import AtomicModule, CompositeModule, LinearModule, Module

__all__ = ["to_mermaid"]


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


class _Renderer:
    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.edges: list[str] = []
        self.count = 0

    def node(self, label: str, round_: bool = False) -> str:
        nid = f"n{self.count}"
        self.count += 1
        self.nodes.append(
            f"    {nid}(({_label(label)}))" if round_ else f"    {nid}[{_label(label)}]"
        )
        return nid

    def edge(self, out_ep: tuple[str, Any], in_ep: tuple[str, Any]) -> None:
        (a, op), (b, ip) = out_ep, in_ep
        self.edges.append(f"    {a} -->|{_label(op.name + ' → ' + ip.name)}| {b}")

    def visit(self, mod: Module) -> dict[Any, tuple[str, Any]]:
        """Render ``mod``; returns its ports mapped to (node id, inner stage port)."""
        if isinstance(mod, AtomicModule):
            stage = mod.stage
            name = (
                mod.attributes.get("name") or getattr(stage, "name", None) or type(stage).__name__
            )
            nid = self.node(str(name))
            return {p: (nid, p) for p in (*mod.shape.inlets, *mod.shape.outlets)}
        if isinstance(mod, LinearModule):
            spine: list[LinearModule] = []
            m: Module = mod
            while isinstance(m, LinearModule):
                spine.append(m)
                m = m.prev
            ports = self.visit(m)
            ins = [ports[p] for p in m.shape.inlets]
            out = ports[m.shape.outlets[0]] if m.shape.outlets else None
            for node in reversed(spine):
                nxt = node.nxt
                nports = self.visit(nxt)
                if out is not None and nxt.shape.inlets:
                    self.edge(out, nports[nxt.shape.inlets[0]])
                out = nports[nxt.shape.outlets[0]] if nxt.shape.outlets else None
            result: dict[Any, tuple[str, Any]] = dict(zip(mod.shape.inlets, ins))
            if mod.shape.outlets and out is not None:
                result[mod.shape.outlets[0]] = out
            return result
        if isinstance(mod, CompositeModule):
            sub_ports = [self.visit(s) for s in mod.subs]
            for (i, outlet), (j, inlet) in mod.wires:
                self.edge(sub_ports[i][outlet], sub_ports[j][inlet])
            return {p: sub_ports[i][inner] for p, (i, inner) in mod.exposed.items()}
        raise TypeError(f"cannot render {mod!r}")  # pragma: no cover


def to_mermaid(module: Module) -> str:
    """A Mermaid ``flowchart LR`` of ``module``: stages as nodes, wires as edges."""
    r = _Renderer()
    ports = r.visit(module)
    for p in module.shape.inlets:
        r.edge((r.node(p.name, round_=True), p), ports[p])
    for q in module.shape.outlets:
        r.edge(ports[q], (r.node(q.name, round_=True), q))
    return "\n".join(["flowchart LR", *r.nodes, *r.edges]) + "\n"
