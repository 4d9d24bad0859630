"""A flow's topology as SVG, laid out here on the server (the UI only colours it).

The layout is nested blocks: a task list is a column of nodes joined by arrows; a flowable is a
box holding its branches (side by side for Parallel, Switch, If and the Each*/parallel kinds,
one column for the sequential kinds, layers for a Dag) and, below them, its own ``errors`` and
``finally`` in dashed boxes. The flow's ``errors``, ``finally`` and ``afterExecution`` follow the
main column. Every task node is ``<g class="node" data-task="ID">`` so a page can colour it by state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from engine.core.model import Flow, Task

NODE_W, NODE_H = 190, 46
GAP, PAD, HEAD = 22, 10, 28
MAX_NODES = 5000  # a bigger flow is drawn up to this many nodes, then says how many it left out

# Flowables whose children run side by side (one column per child or per branch).
SIDE_BY_SIDE = ("Parallel", "EachParallel")
BRANCHED = ("Switch", "If")


@dataclass
class Block:
    """A laid-out piece: its size and its SVG at the origin (translated by whoever places it)."""

    w: float
    h: float
    svg: list[str] = field(default_factory=list)


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(task: Task) -> str:
    return task.type.rsplit(".", 1)[-1]


def _place(block: Block, x: float, y: float) -> str:
    return f'<g transform="translate({x:g},{y:g})">{"".join(block.svg)}</g>'


def _arrow(x: float, y1: float, y2: float) -> str:
    return f'<path class="edge" d="M{x:g},{y1:g} V{y2 - 4:g}" marker-end="url(#arrow)"/>'


class Layout:
    def __init__(self) -> None:
        self.nodes = 0
        self.left_out = 0

    def node(self, task: Task) -> Block:
        self.nodes += 1
        title = f"{task.id} ({task.raw_type or task.type})"
        cls = "node disabled" if task.disabled else "node"
        svg = [
            f'<g class="{cls}" data-task="{escape(task.id)}" tabindex="0" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="10" y="19" class="tid">{escape(_short(task.id))}</text>'
            f'<text x="10" y="36" class="ttype">{escape(_short(_kind(task), 28))}</text></g>'
        ]
        return Block(NODE_W, NODE_H, svg)

    def column(self, tasks: Sequence[Task]) -> Block:
        """Tasks one under the other, joined by arrows."""
        blocks = [self.task(t) for t in tasks]
        if not blocks:
            return Block(NODE_W, 0)
        width = max(b.w for b in blocks)
        y, svg = 0.0, []
        for i, b in enumerate(blocks):
            if i:
                svg.append(_arrow(width / 2, y - GAP, y))
            svg.append(_place(b, (width - b.w) / 2, y))
            y += b.h + GAP
        return Block(width, y - GAP, svg)

    def row(self, columns: Sequence[tuple[str | None, Block]]) -> Block:
        """Blocks side by side, each under an optional label."""
        x, svg, label_h = 0.0, [], (16 if any(label for label, _ in columns) else 0)
        height = 0.0
        for label, b in columns:
            if label:
                svg.append(f'<text class="branch" x="{x + 2:g}" y="11">{escape(_short(label, 30))}</text>')
            svg.append(_place(b, x, label_h))
            x += b.w + GAP
            height = max(height, b.h + label_h)
        return Block(max(x - GAP, 0), height, svg)

    def dag(self, tasks: Sequence[Task]) -> Block:
        """Layers by longest path over ``dependsOn``; edges from each dependency to its dependent."""
        by_id = {t.id: t for t in tasks}
        depth: dict[str, int] = {}

        def level(tid: str, seen: frozenset[str] = frozenset()) -> int:
            if tid in depth:
                return depth[tid]
            deps = [d for d in by_id[tid].depends_on if d in by_id and d not in seen]
            depth[tid] = 1 + max((level(d, seen | {tid}) for d in deps), default=-1)
            return depth[tid]

        for t in tasks:
            level(t.id)
        layers: dict[int, list[Task]] = {}
        for t in tasks:
            layers.setdefault(depth[t.id], []).append(t)
        placed: dict[str, tuple[float, float, float, float]] = {}
        rows = [(n, [self.task(t) for t in layers[n]], layers[n]) for n in sorted(layers)]
        width = max((sum(b.w for b in bs) + GAP * (len(bs) - 1) for _, bs, _ in rows), default=NODE_W)
        svg, y = [], 0.0
        for _, blocks, ts in rows:
            row_w = sum(b.w for b in blocks) + GAP * (len(blocks) - 1)
            x = (width - row_w) / 2
            for b, t in zip(blocks, ts, strict=True):
                svg.append(_place(b, x, y))
                placed[t.id] = (x, y, b.w, b.h)
                x += b.w + GAP
            y += max(b.h for b in blocks) + GAP * 2
        edges = []
        for t in tasks:
            x2, y2, w2, _ = placed[t.id]
            for d in t.depends_on:
                if d in placed:
                    x1, y1, w1, h1 = placed[d]
                    edges.append(
                        f'<path class="edge" d="M{x1 + w1 / 2:g},{y1 + h1:g} L{x2 + w2 / 2:g},{y2 - 4:g}" '
                        'marker-end="url(#arrow)"/>'
                    )
        return Block(width, max(y - GAP * 2, 0), edges + svg)

    def body(self, task: Task) -> Block:
        kind = _kind(task)
        main = {k: v for k, v in task.branches.items() if k not in ("errors", "finally")}
        if kind == "Dag":
            return self.dag(main.get("tasks", ()))
        if kind in SIDE_BY_SIDE:
            return self.row([(None, self.column([t])) for t in main.get("tasks", ())])
        if kind in BRANCHED or len(main) > 1:
            return self.row([(k.removeprefix("case:"), self.column(v)) for k, v in main.items()])
        return self.column(next(iter(main.values()), ()))

    def task(self, task: Task) -> Block:
        if self.nodes >= MAX_NODES:
            self.left_out += 1
            return Block(0, 0)
        if not task.branches:
            return self.node(task)
        head = self.node(task)
        parts = [self.body(task)]
        for name in ("errors", "finally"):
            if task.branches.get(name):
                parts.append(self.section(name, task.branches[name]))
        inner_w = max([head.w, *(p.w for p in parts)])
        svg, y = [_place(head, PAD, PAD)], PAD + head.h + GAP
        for p in parts:
            if p.h:
                svg.append(_arrow(PAD + head.w / 2, y - GAP, y) if p is parts[0] else "")
                svg.append(_place(p, PAD, y))
                y += p.h + GAP
        w, h = inner_w + 2 * PAD, y - GAP + PAD
        frame = f'<rect class="flowable" data-task="{escape(task.id)}" width="{w:g}" height="{h:g}" rx="8"/>'
        return Block(w, h, [frame, *svg])

    def section(self, name: str, tasks: Sequence[Task]) -> Block:
        """An ``errors``/``finally``/``afterExecution`` list in a dashed, labelled box."""
        inner = self.column(tasks)
        w, h = inner.w + 2 * PAD, inner.h + HEAD + PAD
        svg = [
            f'<rect class="section {escape(name)}" width="{w:g}" height="{h:g}" rx="8"/>',
            f'<text class="branch" x="{PAD}" y="18">{escape(name)}</text>',
            _place(inner, PAD, HEAD),
        ]
        return Block(w, h, svg)


def topology_svg(flow: Flow) -> str:
    """The SVG document of ``flow``'s topology."""
    lay = Layout()
    parts = [lay.column(flow.tasks)]
    for name, tasks in (
        ("errors", flow.errors),
        ("finally", flow.finally_),
        ("afterExecution", flow.after_execution),
    ):
        if tasks:
            parts.append(lay.section(name, tasks))
    if flow.triggers:
        labels = ", ".join(f"{t.id} ({t.type.rsplit('.', 1)[-1]})" for t in flow.triggers)
        parts.insert(
            0,
            Block(NODE_W, 18, [f'<text class="branch" y="13">triggers: {escape(_short(labels, 80))}</text>']),
        )
    if lay.left_out:
        parts.append(
            Block(NODE_W, 18, [f'<text class="branch" y="13">{lay.left_out} more tasks not drawn</text>'])
        )
    width = max(p.w for p in parts) + 2 * PAD
    svg, y = [], float(PAD)
    for p in parts:
        svg.append(_place(p, PAD, y))
        y += p.h + GAP
    height = y - GAP + PAD
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="topology of {escape(flow.namespace)}.'
        f'{escape(flow.id)}"><defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" '
        'markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
        + "".join(svg)
        + "</svg>"
    )
