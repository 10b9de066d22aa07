"""The order flow diagram, generated from the state machine table itself.

``order_flow_svg()`` and ``return_flow_svg()`` draw ``TRANSITIONS`` and
``RETURN_TRANSITIONS`` as SVG, so the picture on the status page cannot drift from the
rules the system enforces. The layout is a small layered (Sugiyama-style) drawing done
here in Python, with no graphviz binary to install:

1. Cycles (re-pick, redelivery, ...) are broken by turning the edges that close them
   during a depth-first walk from the initial state; they are drawn upwards.
2. Each state's layer is its longest path from the initial state, so the happy path
   reads top to bottom and every contingency hangs beside the step it leaves from.
3. Edges spanning several layers get invisible waypoints, one per layer crossed.
4. Each layer is ordered by the barycentre of its neighbours (sweeping down and up,
   keeping the order with the fewest crossings), then nodes are placed as close to
   their neighbours as spacing allows (least squares under order constraints), with
   the happy path weighted most so it comes out straight.

Cancellations ("from any state before shipped") would be a dozen crossing lines; they
are drawn as a mark on every cancellable state plus one bracket to ``cancelled``.

Each state is ``<g id="state-<name>" class="wcs-state ...">`` with a count badge
``id="count-<name>"`` so the status page can highlight live counts (pass ``counts``,
or update the badge text in the browser). Every transition is an element with
``data-src``/``data-dst``/``data-kind`` and a ``<title>`` tooltip. The SVG is
self-contained: no external fonts, stylesheets or links.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr

from wcs.domain.states import (
    INITIAL,
    RETURN_TERMINAL,
    RETURN_TRANSITIONS,
    STAGE_OF,
    TERMINAL,
    TRANSITIONS,
    OrderState,
    ReturnState,
    Transition,
)
from wcs.i18n.markers import N_

# Geometry, in SVG user units (px at 100 %).
NODE_W = 156.0
NODE_H = 34.0
DUMMY_W = 14.0
NODE_GAP = 30.0
LAYER_GAP = 88.0
MARGIN = 28.0
TITLE_H = 34.0
LEGEND_H = 46.0
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
LABEL_FONT_PX = 10.0
# Average advance of a sans-serif glyph relative to the font size: for label boxes.
_GLYPH = 0.56

_PORT_GAP = 12.0
_KIND_WEIGHT = {"flow": 40.0, "contingency": 1.0, "cancel": 0.0}


@dataclass(frozen=True, slots=True)
class Machine:
    """A state machine to draw: its table and how to colour and mark its states."""

    name: str
    title: str
    states: tuple[str, ...]
    transitions: tuple[Transition, ...]
    initial: str
    terminal: frozenset[str]
    stage_of: tuple[tuple[str, str], ...] = ()
    # Target state whose incoming edges are summarised as marks + one bracket.
    summarise_into: str | None = None


ORDER_MACHINE = Machine(
    name="order",
    title=N_("Order flow"),
    states=tuple(OrderState),
    transitions=TRANSITIONS,
    initial=INITIAL,
    terminal=TERMINAL,
    stage_of=tuple(STAGE_OF.items()),
    summarise_into=OrderState.CANCELLED,
)

RETURN_MACHINE = Machine(
    name="return",
    title=N_("Returns (per order line)"),
    states=tuple(ReturnState),
    transitions=RETURN_TRANSITIONS,
    initial=ReturnState.RETURN_REQUESTED,
    terminal=RETURN_TERMINAL,
    stage_of=tuple((s.value, "after_sales") for s in ReturnState),
)


# -- layout --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class NodeBox:
    state: str
    x: float  # centre
    y: float  # centre
    layer: int
    w: float = NODE_W
    h: float = NODE_H

    @property
    def left(self) -> float:
        return self.x - self.w / 2

    @property
    def right(self) -> float:
        return self.x + self.w / 2

    @property
    def top(self) -> float:
        return self.y - self.h / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True, slots=True)
class EdgePath:
    transition: Transition
    points: tuple[Point, ...]  # from the source's port to the target's port
    upward: bool  # drawn against the flow (closes a cycle)
    show_label: bool


@dataclass(frozen=True, slots=True)
class LabelBox:
    transition: Transition
    x: float
    y: float
    anchor: str  # "start" | "end" | "middle"
    w: float
    h: float

    def box(self) -> tuple[float, float, float, float]:
        left = {"start": self.x, "end": self.x - self.w, "middle": self.x - self.w / 2}[self.anchor]
        return left, self.y - self.h + 2, left + self.w, self.y + 2


@dataclass(frozen=True, slots=True)
class Summary:
    """Edges into one state (cancelled) drawn as marks on their sources plus a bracket."""

    target: str
    transitions: tuple[Transition, ...]
    bracket_top: float
    bracket_bottom: float | None  # None: sources are not one contiguous band of layers
    bracket_x: float
    note: str  # marked for translation, with ``%(state)s`` or ``%(n)s``
    note_params: Mapping[str, str | int]


@dataclass(frozen=True, slots=True)
class Layout:
    machine: Machine
    nodes: Mapping[str, NodeBox]
    edges: tuple[EdgePath, ...]
    labels: tuple[LabelBox, ...]
    summary: Summary | None
    width: float
    height: float
    layers: int
    crossings: int


@dataclass
class _Graph:
    """Working graph of the layout: real and waypoint nodes, weighted edges per layer."""

    layer: dict[str, int] = field(default_factory=dict)
    width: dict[str, float] = field(default_factory=dict)
    down: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    up: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    chains: list[tuple[Transition, list[str], bool]] = field(default_factory=list)

    def add_node(self, node: str, layer: int, width: float) -> None:
        self.layer[node] = layer
        self.width[node] = width
        self.down.setdefault(node, [])
        self.up.setdefault(node, [])

    def link(self, upper: str, lower: str, weight: float) -> None:
        self.down[upper].append((lower, weight))
        self.up[lower].append((upper, weight))


def _back_edges(machine: Machine, moves: Sequence[Transition]) -> set[int]:
    """Indices of moves that close a cycle in a depth-first walk from the initial state."""
    outgoing: dict[str, list[int]] = {}
    for i, move in enumerate(moves):
        outgoing.setdefault(move.src, []).append(i)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[int] = set()

    def walk(start: str) -> None:
        # Iterative so a long machine cannot hit the recursion limit.
        state[start] = 1
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, pos = stack[-1]
            edges = outgoing.get(node, [])
            if pos == len(edges):
                state[node] = 2
                stack.pop()
                continue
            stack[-1] = (node, pos + 1)
            index = edges[pos]
            dst = moves[index].dst
            if state.get(dst) == 1:
                back.add(index)
            elif dst not in state:
                state[dst] = 1
                stack.append((dst, 0))

    walk(machine.initial)
    for node in machine.states:
        if node not in state:
            walk(node)
    return back


def _longest_path_layers(
    states: Sequence[str], dag: Sequence[tuple[str, str]], initial: str
) -> dict[str, int]:
    preds: dict[str, list[str]] = {s: [] for s in states}
    indegree = dict.fromkeys(states, 0)
    succs: dict[str, list[str]] = {s: [] for s in states}
    for src, dst in dag:
        preds[dst].append(src)
        succs[src].append(dst)
        indegree[dst] += 1
    ready = [s for s in states if indegree[s] == 0]
    # The initial state first, so it sits alone on top when it is a source.
    ready.sort(key=lambda s: s != initial)
    layer: dict[str, int] = {}
    while ready:
        node = ready.pop(0)
        layer[node] = max((layer[p] + 1 for p in preds[node]), default=0)
        for nxt in succs[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return layer


def _crossings(order: Sequence[Sequence[str]], graph: _Graph) -> int:
    total = 0
    for upper, lower in itertools.pairwise(order):
        pos = {n: i for i, n in enumerate(lower)}
        segments = [(i, pos[d]) for i, n in enumerate(upper) for d, _ in graph.down[n]]
        for a in range(len(segments)):
            ua, la = segments[a]
            for b in range(a + 1, len(segments)):
                ub, lb = segments[b]
                if (ua - ub) * (la - lb) < 0:
                    total += 1
    return total


def _barycentre_order(order: list[list[str]], graph: _Graph, rounds: int = 12) -> list[list[str]]:
    best = [list(layer) for layer in order]
    best_crossings = _crossings(best, graph)
    current = [list(layer) for layer in order]
    for round_no in range(rounds):
        downward = round_no % 2 == 0
        indices = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for li in indices:
            ref = current[li - 1] if downward else current[li + 1]
            ref_pos = {n: i for i, n in enumerate(ref)}
            keys: dict[str, float] = {}
            for i, node in enumerate(current[li]):
                links = graph.up[node] if downward else graph.down[node]
                total = sum(w for _, w in links)
                if links and total > 0:
                    keys[node] = sum(ref_pos[n] * w for n, w in links) / total
                elif links:
                    keys[node] = sum(ref_pos[n] for n, _ in links) / len(links)
                else:
                    keys[node] = float(i)
            current[li].sort(key=lambda n: keys[n])
        _transpose(current, graph)
        crossings = _crossings(current, graph)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in current], crossings
    return best


def _transpose(order: list[list[str]], graph: _Graph) -> None:
    """Swap neighbours in a layer while that lowers the crossings (a cheap local fix)."""
    improved = True
    passes = 0
    while improved and passes < 4:
        improved = False
        passes += 1
        for layer in order:
            for i in range(len(layer) - 1):
                before = _crossings(order, graph)
                layer[i], layer[i + 1] = layer[i + 1], layer[i]
                if _crossings(order, graph) < before:
                    improved = True
                else:
                    layer[i], layer[i + 1] = layer[i + 1], layer[i]


def _isotonic(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([value, weight, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            w = w1 + w2
            blocks.append([(m1 * w1 + m2 * w2) / w, w, c1 + c2])
    fitted: list[float] = []
    for mean, _, count in blocks:
        fitted.extend([mean] * int(count))
    return fitted


def _place_x(order: list[list[str]], graph: _Graph, rounds: int = 24) -> dict[str, float]:
    x: dict[str, float] = {}
    for layer in order:
        cursor = 0.0
        for node in layer:
            x[node] = cursor + graph.width[node] / 2
            cursor += graph.width[node] + NODE_GAP
    for round_no in range(rounds):
        sweep = order if round_no % 2 == 0 else list(reversed(order))
        for layer in sweep:
            desired: list[float] = []
            weights: list[float] = []
            for node in layer:
                links = graph.up[node] + graph.down[node]
                total = sum(w for _, w in links)
                if total > 0:
                    desired.append(sum(x[n] * w for n, w in links) / total)
                    weights.append(total)
                else:
                    desired.append(x[node])
                    weights.append(0.01)
            # Keep order and spacing: subtract each node's minimum offset from the
            # first, fit a non-decreasing sequence, add the offsets back.
            offsets = [0.0]
            for a, b in itertools.pairwise(layer):
                offsets.append(offsets[-1] + (graph.width[a] + graph.width[b]) / 2 + NODE_GAP)
            fitted = _isotonic([d - o for d, o in zip(desired, offsets, strict=True)], weights)
            for node, base, offset in zip(layer, fitted, offsets, strict=True):
                x[node] = base + offset
    return x


def _label_width(text: str) -> float:
    return len(text) * LABEL_FONT_PX * _GLYPH + 4


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _curve_samples(points: Sequence[Point], per_segment: int = 12) -> list[Point]:
    """Points along the drawn curve (the same cubic segments ``_path_d`` emits)."""
    samples: list[Point] = []
    for a, b in itertools.pairwise(points):
        dy = (b.y - a.y) / 2
        c1, c2 = Point(a.x, a.y + dy), Point(b.x, b.y - dy)
        for i in range(per_segment + 1):
            t = i / per_segment
            u = 1 - t
            samples.append(
                Point(
                    u**3 * a.x + 3 * u * u * t * c1.x + 3 * u * t * t * c2.x + t**3 * b.x,
                    u**3 * a.y + 3 * u * u * t * c1.y + 3 * u * t * t * c2.y + t**3 * b.y,
                )
            )
    return samples


def _hits(box: tuple[float, float, float, float], points: Iterable[Point]) -> int:
    return sum(1 for p in points if box[0] <= p.x <= box[2] and box[1] <= p.y <= box[3])


def _label_cost(
    label: LabelBox, taken: Sequence[tuple[float, float, float, float]], others: Sequence[Point]
) -> tuple[int, int]:
    box = label.box()
    return sum(1 for t in taken if _overlaps(box, t)), _hits(box, others)


def _place_labels(edges: Sequence[EdgePath], nodes: Mapping[str, NodeBox]) -> tuple[LabelBox, ...]:
    """Greedy: beside the middle of its edge, first spot clear of nodes, labels, edges."""
    taken = [(n.left - 2, n.top - 2, n.right + 2, n.bottom + 2) for n in nodes.values()]
    curves = [_curve_samples(e.points) for e in edges]
    placed: list[LabelBox] = []
    for index, edge in enumerate(edges):
        if not edge.show_label:
            continue
        others = [p for i, curve in enumerate(curves) if i != index for p in curve]
        pts = edge.points
        k = (len(pts) - 2) // 2
        a, b = pts[k], pts[k + 1]
        mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
        text = edge.transition.label
        w = _label_width(text)
        h = LABEL_FONT_PX + 2
        sides = ("end", "start") if b.x < a.x else ("start", "end")
        candidates = [
            LabelBox(edge.transition, mx + (5 if side == "start" else -5), my + dy, side, w, h)
            for dy in (3.0, -9.0, 15.0, -21.0, 27.0, -33.0)
            for side in sides
        ]

        # The first clear candidate; failing that, the one that covers least.
        chosen = min(candidates, key=lambda c: _label_cost(c, taken, others))
        taken.append(chosen.box())
        placed.append(chosen)
    return tuple(placed)


def _ports(node: NodeBox, ends: list[tuple[float, int, str]]) -> dict[tuple[int, str], float]:
    """Where each edge meets one side of a node: towards where it goes next, apart.

    An edge heading straight down keeps the centre (so the happy path stays a straight
    line); others lean towards their direction, at least ``_PORT_GAP`` apart.
    """
    half = node.w / 2 - 10
    wanted = sorted(
        (node.x + max(-half, min(half, (nx - node.x) * 0.5)), index, role)
        for nx, index, role in ends
    )
    spread = _isotonic(
        [w - i * _PORT_GAP for i, (w, _, _) in enumerate(wanted)], [1.0] * len(wanted)
    )
    xs = [base + i * _PORT_GAP for i, base in enumerate(spread)]
    if xs:
        # Keep the group on the node's side even when many edges crowd one end.
        overflow = max(0.0, xs[-1] - (node.x + half)) - max(0.0, (node.x - half) - xs[0])
        xs = [x - overflow for x in xs]
    return {(index, role): x for x, (_, index, role) in zip(xs, wanted, strict=True)}


@functools.lru_cache(maxsize=8)
def layout(machine: Machine) -> Layout:
    """Positions of every state and route of every edge; pure and cached per machine."""
    summarised = tuple(
        t for t in machine.transitions if machine.summarise_into and t.dst == machine.summarise_into
    )
    drawn = [t for t in machine.transitions if t not in summarised]
    states = [
        s
        for s in machine.states
        if s != machine.summarise_into or any(s in (t.src, t.dst) for t in drawn)
    ]
    back = _back_edges(machine, drawn)
    dag = [(t.dst, t.src) if i in back else (t.src, t.dst) for i, t in enumerate(drawn)]
    layers = _longest_path_layers(states, dag, machine.initial)

    graph = _Graph()
    for state in states:
        graph.add_node(state, layers[state], NODE_W)
    for i, (transition, (upper, lower)) in enumerate(zip(drawn, dag, strict=True)):
        weight = _KIND_WEIGHT[transition.kind]
        chain = [upper]
        for layer_no in range(layers[upper] + 1, layers[lower]):
            waypoint = f"\x00{i}:{layer_no}"
            graph.add_node(waypoint, layer_no, DUMMY_W)
            chain.append(waypoint)
        chain.append(lower)
        for a, b in itertools.pairwise(chain):
            # Waypoint-to-waypoint links pull long edges straight.
            both_dummy = a.startswith("\x00") and b.startswith("\x00")
            graph.link(a, b, max(weight, 2.0) if both_dummy else max(weight, 0.5))
        graph.chains.append((transition, chain, i in back))

    depth = max(layers.values(), default=0) + 1
    order: list[list[str]] = [[] for _ in range(depth)]
    # Start from table order (happy path first), which the barycentre sweeps refine.
    for node in graph.layer:
        order[graph.layer[node]].append(node)
    order = _barycentre_order(order, graph)
    crossings = _crossings(order, graph)
    xs = _place_x(order, graph)

    raw_summary = _summary(machine, summarised, layers, xs, graph)
    lefts = [xs[n] - graph.width[n] / 2 for n in xs]
    if raw_summary is not None:
        lefts.append(raw_summary.x - 14)  # room for the bracket's caption
    shift = MARGIN - min(lefts)
    top = MARGIN + TITLE_H

    def y_of(layer_no: int) -> float:
        return top + NODE_H / 2 + layer_no * LAYER_GAP

    boxes = {s: NodeBox(s, xs[s] + shift, y_of(layers[s]), layers[s]) for s in states}
    waypoint_at = {
        n: Point(xs[n] + shift, y_of(graph.layer[n])) for n in graph.layer if n not in boxes
    }

    # Ports: each edge leaves/enters its real nodes at the bottom (going down) or top.
    bottom_ends: dict[str, list[tuple[float, int, str]]] = {s: [] for s in states}
    top_ends: dict[str, list[tuple[float, int, str]]] = {s: [] for s in states}

    def next_x(chain: list[str], at: int) -> float:
        node = chain[at]
        return waypoint_at[node].x if node in waypoint_at else boxes[node].x

    for index, (_, chain, _) in enumerate(graph.chains):
        upper, lower = chain[0], chain[-1]
        bottom_ends[upper].append((next_x(chain, 1), index, "upper"))
        top_ends[lower].append((next_x(chain, -2), index, "lower"))
    ports: dict[tuple[int, str], float] = {}
    for state in states:
        ports.update(_ports(boxes[state], bottom_ends[state]))
        ports.update(_ports(boxes[state], top_ends[state]))

    seen_labels: set[tuple[str, str]] = set()
    edges: list[EdgePath] = []
    for index, (transition, chain, upward) in enumerate(graph.chains):
        upper_box, lower_box = boxes[chain[0]], boxes[chain[-1]]
        points = [Point(ports[(index, "upper")], upper_box.bottom)]
        points.extend(waypoint_at[n] for n in chain[1:-1])
        points.append(Point(ports[(index, "lower")], lower_box.top))
        if upward:
            points.reverse()
        key = (transition.dst, transition.label)
        edges.append(EdgePath(transition, tuple(points), upward, key not in seen_labels))
        seen_labels.add(key)

    summary: Summary | None = None
    if raw_summary is not None:
        target = NodeBox(
            raw_summary.target,
            raw_summary.target_x + shift,
            y_of(raw_summary.target_layer),
            raw_summary.target_layer,
        )
        boxes[target.state] = target
        sources = [boxes[t.src] for t in raw_summary.transitions]
        summary = Summary(
            target=target.state,
            transitions=raw_summary.transitions,
            bracket_top=min(b.top for b in sources),
            bracket_bottom=max(b.bottom for b in sources) if raw_summary.contiguous else None,
            bracket_x=raw_summary.x + shift,
            note=raw_summary.note,
            note_params=raw_summary.note_params,
        )
        depth = max(depth, target.layer + 1)
    right = max(b.right for b in boxes.values())
    if waypoint_at:
        right = max(right, max(p.x + DUMMY_W / 2 for p in waypoint_at.values()))
    labels = _place_labels(edges, boxes)
    label_right = max((lab.box()[2] for lab in labels), default=0.0)
    width = max(right, label_right) + MARGIN
    height = top + (depth - 1) * LAYER_GAP + NODE_H + LEGEND_H + MARGIN
    return Layout(
        machine=machine,
        nodes=boxes,
        edges=tuple(edges),
        labels=labels,
        summary=summary,
        width=math.ceil(width),
        height=math.ceil(height),
        layers=depth,
        crossings=crossings,
    )


@dataclass(frozen=True, slots=True)
class _RawSummary:
    target: str
    transitions: tuple[Transition, ...]
    target_layer: int
    target_x: float
    x: float  # the bracket's vertical line
    contiguous: bool
    note: str
    note_params: Mapping[str, str | int]


def _summary(
    machine: Machine,
    summarised: tuple[Transition, ...],
    layers: Mapping[str, int],
    xs: Mapping[str, float],
    graph: _Graph,
) -> _RawSummary | None:
    """Place the summarised target left of the layer below its sources, bracket beside."""
    if not summarised or machine.summarise_into is None:
        return None
    sources = {t.src for t in summarised}
    src_layers = sorted({layers[s] for s in sources})
    first, last = src_layers[0], src_layers[-1]
    band = {s for s, layer in layers.items() if first <= layer <= last}
    # The bracket claims "every state in these layers"; draw it only when that is true.
    contiguous = band == sources
    after = sorted(s for s, layer in layers.items() if layer == last + 1)
    params: dict[str, str | int]
    if contiguous and first == 0 and len(after) == 1:
        note, params = N_("from any state before %(state)s"), {"state": after[0]}
    else:
        note, params = N_("from the %(n)s states marked ×"), {"n": len(sources)}

    def left(node: str) -> float:
        return xs[node] - graph.width[node] / 2

    target_layer = last + 1
    beside = [left(n) for n, layer in graph.layer.items() if layer == target_layer]
    target_x = min(beside, default=min(map(left, xs))) - NODE_GAP - NODE_W / 2
    band_left = min(left(n) for n, layer in graph.layer.items() if first <= layer <= last)
    # Left of the cancel marks (which sit on the nodes' left borders) and of the target.
    x = min(band_left - 18, target_x - NODE_W / 2 - 18)
    return _RawSummary(
        machine.summarise_into, summarised, target_layer, target_x, x, contiguous, note, params
    )


# -- SVG -----------------------------------------------------------------------------


class Words(Protocol):
    """What the drawing needs from a language (``wcs.i18n.translator.Translator``)."""

    def state(self, value: str) -> str: ...

    def gettext(self, message: str, **params: object) -> str: ...


class _Machine:
    """The drawing's own words: state ids and the English texts, as in the manuals."""

    def state(self, value: str) -> str:
        return value

    def gettext(self, message: str, **params: object) -> str:
        return message % params if params else message


MACHINE_WORDS: Words = _Machine()

_STAGE_COLOURS = {
    "intake": ("#e8f1fb", "#4a7ab5"),
    "reservation": ("#eaf6ee", "#3d8b57"),
    "picking": ("#fdf3e1", "#b7801f"),
    "qc": ("#f3ecfa", "#7d55b0"),
    "packing": ("#e6f6f6", "#2b8a8a"),
    "outbound": ("#fbeaea", "#b04a4a"),
    "delivery": ("#eef0fb", "#4b5bb5"),
    "after_sales": ("#f2f2f2", "#666666"),
}


def _style(machine: Machine) -> str:
    stage_rules = "".join(
        f".wcs-flow .wcs-stage-{stage} rect.wcs-box{{fill:{fill};stroke:{stroke}}}"
        for stage, (fill, stroke) in _STAGE_COLOURS.items()
    )
    return (
        f".wcs-flow{{font-family:{FONT}}}"
        ".wcs-flow .wcs-title{font-size:15px;font-weight:600;fill:#222}"
        ".wcs-flow rect.wcs-box{stroke-width:1.4}"
        ".wcs-flow .wcs-name{font-size:12px;fill:#1d1d1d;text-anchor:middle}"
        ".wcs-flow .wcs-terminal rect.wcs-box{stroke-width:2.6}"
        ".wcs-flow .wcs-initial rect.wcs-box{stroke-width:2.6}"
        ".wcs-flow .wcs-edge path{fill:none;stroke:#555;stroke-width:1.4}"
        ".wcs-flow .wcs-kind-contingency path{stroke:#c46a1b;stroke-dasharray:5 3}"
        ".wcs-flow .wcs-upward path{stroke-dasharray:2 3}"
        ".wcs-flow .wcs-label{font-size:10px;fill:#444;paint-order:stroke;"
        "stroke:#fff;stroke-width:3px;stroke-linejoin:round}"
        ".wcs-flow .wcs-contingency-label{fill:#a0520f}"
        ".wcs-flow .wcs-count rect{fill:#d93a3a}"
        ".wcs-flow .wcs-count text{font-size:10px;font-weight:700;fill:#fff;text-anchor:middle}"
        ".wcs-flow .wcs-count.wcs-empty{display:none}"
        ".wcs-flow .wcs-active rect.wcs-box{stroke:#d93a3a;stroke-width:2.6}"
        ".wcs-flow .wcs-cancel-mark circle{fill:#fff;stroke:#8a8a8a}"
        ".wcs-flow .wcs-cancel-mark text{font-size:9px;fill:#8a8a8a;text-anchor:middle}"
        ".wcs-flow .wcs-bracket{fill:none;stroke:#8a8a8a;stroke-width:1.2;stroke-dasharray:3 3}"
        ".wcs-flow .wcs-note{font-size:10px;fill:#666}"
        ".wcs-flow .wcs-legend text{font-size:10px;fill:#444}" + stage_rules
    )


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _path_d(points: Sequence[Point]) -> str:
    first = points[0]
    parts = [f"M{_fmt(first.x)},{_fmt(first.y)}"]
    for a, b in itertools.pairwise(points):
        dy = (b.y - a.y) / 2
        parts.append(
            f"C{_fmt(a.x)},{_fmt(a.y + dy)} {_fmt(b.x)},{_fmt(b.y - dy)} {_fmt(b.x)},{_fmt(b.y)}"
        )
    return " ".join(parts)


def _edge_title(t: Transition, words: Words) -> str:
    return f"{words.state(t.src)} → {words.state(t.dst)}: {words.gettext(t.label)} ({t.kind})"


def _attrs(**values: str) -> str:
    # ``class_`` -> ``class``; ``data_src`` -> ``data-src``.
    return "".join(f" {k.rstrip('_').replace('_', '-')}={quoteattr(v)}" for k, v in values.items())


def _node_svg(
    box: NodeBox,
    machine: Machine,
    count: int | None,
    cancel_mark: Transition | None,
    words: Words,
) -> str:
    stages = dict(machine.stage_of)
    classes = ["wcs-state", f"wcs-stage-{stages.get(box.state, 'after_sales')}"]
    if box.state in machine.terminal:
        classes.append("wcs-terminal")
    if box.state == machine.initial:
        classes.append("wcs-initial")
    if count:
        classes.append("wcs-active")
    badge_text = "" if count is None else str(count)
    badge_w = max(18.0, 7.0 * len(badge_text) + 10)
    badge_classes = "wcs-count" + ("" if count else " wcs-empty")
    name = words.state(box.state)
    title = name if count is None else words.gettext("%(state)s: %(n)s orders", state=name, n=count)
    parts = [
        f"<g{_attrs(id=f'state-{box.state}', class_=' '.join(classes), data_state=box.state)}>",
        f"<title>{escape(title)}</title>",
        f'<rect class="wcs-box" x="{_fmt(box.left)}" y="{_fmt(box.top)}" '
        f'width="{_fmt(box.w)}" height="{_fmt(box.h)}" rx="8"/>',
        f'<text class="wcs-name" x="{_fmt(box.x)}" y="{_fmt(box.y + 4)}">{escape(name)}</text>',
        f"<g{_attrs(id=f'count-{box.state}', class_=badge_classes)}>",
        f'<rect x="{_fmt(box.right - badge_w / 2 - 4)}" y="{_fmt(box.top - 9)}" '
        f'width="{_fmt(badge_w)}" height="18" rx="9"/>',
        f'<text x="{_fmt(box.right - 4)}" y="{_fmt(box.top + 4)}">{escape(badge_text)}</text>',
        "</g>",
    ]
    if cancel_mark is not None:
        t = cancel_mark
        cx, cy = box.left, box.y
        parts.extend(
            [
                f"<g{_attrs(class_='wcs-edge wcs-kind-cancel wcs-cancel-mark', data_src=t.src, data_dst=t.dst, data_kind=t.kind)}>",  # noqa: E501
                f"<title>{escape(_edge_title(t, words))}</title>",
                f'<circle cx="{_fmt(cx)}" cy="{_fmt(cy)}" r="6.5"/>',
                f'<text x="{_fmt(cx)}" y="{_fmt(cy + 3.2)}">×</text>',
                "</g>",
            ]
        )
    parts.append("</g>")
    return "".join(parts)


def render_svg(
    machine: Machine = ORDER_MACHINE,
    counts: Mapping[str, int] | None = None,
    *,
    title: str | None = None,
    words: Words = MACHINE_WORDS,
) -> str:
    """The machine as a standalone SVG document (string); ``counts`` fill the badges.

    ``words`` names the states and writes the texts (a ``Translator`` for a page in
    the reader's language); ids, classes and data attributes stay the machine's.
    The layout is measured on the English texts: translated ones are not longer.
    """
    lay = layout(machine)
    unknown = set(counts or ()) - set(lay.nodes)
    if unknown:
        raise ValueError(f"counts for states not in the {machine.name} machine: {sorted(unknown)}")
    p = f"wcs-{machine.name}"
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wcs-flow" id="{p}-flow" '
        f'viewBox="0 0 {_fmt(lay.width)} {_fmt(lay.height)}" '
        f'width="{_fmt(lay.width)}" height="{_fmt(lay.height)}" role="img" '
        f'aria-labelledby="{p}-title">',
        f'<title id="{p}-title">{escape(title or words.gettext(machine.title))}</title>',
        f"<style>{_style(machine)}</style>",
        "<defs>",
    ]
    for kind, colour in (("flow", "#555"), ("contingency", "#c46a1b"), ("cancel", "#8a8a8a")):
        out.append(
            f'<marker id="{p}-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append(
        f'<text class="wcs-title" x="{_fmt(MARGIN)}" y="{_fmt(MARGIN + 8)}">'
        f"{escape(title or words.gettext(machine.title))}</text>"
    )

    out.append('<g class="wcs-edges">')
    for edge in lay.edges:
        t = edge.transition
        classes = f"wcs-edge wcs-kind-{t.kind}" + (" wcs-upward" if edge.upward else "")
        out.append(
            f"<g{_attrs(class_=classes, data_src=t.src, data_dst=t.dst, data_kind=t.kind)}>"
            f"<title>{escape(_edge_title(t, words))}</title>"
            f'<path d="{_path_d(edge.points)}" marker-end="url(#{p}-arrow-{t.kind})"/></g>'
        )
    out.append("</g>")

    summary = lay.summary
    marks: dict[str, Transition] = {}
    if summary is not None:
        marks = {t.src: t for t in summary.transitions}
        target = lay.nodes[summary.target]
        out.append('<g class="wcs-summary">')
        if summary.bracket_bottom is not None:
            # A bracket along the band of cancellable layers, then one arrow into the target.
            bx, top, bottom = summary.bracket_x, summary.bracket_top, summary.bracket_bottom
            out.append(
                f'<path class="wcs-bracket" d="M{_fmt(bx + 8)},{_fmt(top)} H{_fmt(bx)} '
                f'V{_fmt(bottom)} H{_fmt(bx + 8)}"/>'
                f'<path class="wcs-bracket" d="M{_fmt(bx)},{_fmt(bottom)} V{_fmt(target.y)} '
                f'H{_fmt(target.left)}" marker-end="url(#{p}-arrow-cancel)"/>'
                f'<text class="wcs-note" transform="translate({_fmt(bx - 5)},'
                f'{_fmt((top + bottom) / 2)}) rotate(-90)" text-anchor="middle">'
                f"{escape(words.gettext('cancel possible in any of these states'))}</text>"
            )
        out.append(
            f'<text class="wcs-note" x="{_fmt(target.x)}" y="{_fmt(target.bottom + 14)}" '
            f'text-anchor="middle">× {escape(_note(summary, words))}</text>'
        )
        out.append("</g>")

    out.append('<g class="wcs-states">')
    for state, box in lay.nodes.items():
        count = None if counts is None else counts.get(state, 0)
        out.append(_node_svg(box, machine, count, marks.get(state), words))
    out.append("</g>")

    out.append('<g class="wcs-labels">')
    for label in lay.labels:
        t = label.transition
        cls = "wcs-label" + (" wcs-contingency-label" if t.kind == "contingency" else "")
        out.append(
            f'<text class="{cls}" x="{_fmt(label.x)}" y="{_fmt(label.y)}" '
            f'text-anchor="{label.anchor}">{escape(words.gettext(t.label))}</text>'
        )
    out.append("</g>")
    out.append(_legend(lay, p, words))
    out.append("</svg>")
    return "\n".join(out)


def _note(summary: Summary, words: Words) -> str:
    params = {
        k: words.state(v) if isinstance(v, str) else v for k, v in summary.note_params.items()
    }
    return words.gettext(summary.note, **params)


def _legend(lay: Layout, prefix: str, words: Words) -> str:
    y = lay.height - MARGIN - LEGEND_H / 2 + 8
    x = MARGIN
    kinds = {e.transition.kind for e in lay.edges}
    items = [("flow", "", words.gettext("normal flow"))] if "flow" in kinds else []
    if "contingency" in kinds:
        items.append(("contingency", "5 3", words.gettext("contingency")))
    if any(e.upward for e in lay.edges):
        items.append(("contingency", "2 3", words.gettext("back to an earlier step")))
    parts = ['<g class="wcs-legend">']
    for kind, dash, text in items:
        colour = "#555" if kind == "flow" else "#c46a1b"
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path d="M{_fmt(x)},{_fmt(y)} h34" stroke="{colour}" stroke-width="1.4" '
            f'fill="none"{dash_attr} marker-end="url(#{prefix}-arrow-{kind})"/>'
            f'<text x="{_fmt(x + 42)}" y="{_fmt(y + 3.5)}">{escape(text)}</text>'
        )
        x += 58 + _label_width(text)
    if lay.summary is not None:
        parts.append(
            f'<circle cx="{_fmt(x + 6)}" cy="{_fmt(y)}" r="6.5" fill="#fff" stroke="#8a8a8a"/>'
            f'<text x="{_fmt(x + 6)}" y="{_fmt(y + 3.2)}" text-anchor="middle" '
            f'fill="#8a8a8a" font-size="9">×</text>'
            f'<text x="{_fmt(x + 18)}" y="{_fmt(y + 3.5)}">'
            f"{escape(words.gettext('can be %(state)s', state=words.state(lay.summary.target)))}"
            "</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def order_flow_svg(counts: Mapping[str, int] | None = None, words: Words = MACHINE_WORDS) -> str:
    """The order state machine; ``counts`` (orders per state) light up the badges."""
    return render_svg(ORDER_MACHINE, counts, words=words)


def return_flow_svg(counts: Mapping[str, int] | None = None, words: Words = MACHINE_WORDS) -> str:
    """The after-sales (return) machine, per order line."""
    return render_svg(RETURN_MACHINE, counts, words=words)


# -- text renderings for documentation -----------------------------------------------


def mermaid(machine: Machine = ORDER_MACHINE, *, summarise: bool = True) -> str:
    """A Mermaid ``stateDiagram-v2`` for docs; summarised edges become one note."""
    lines = ["stateDiagram-v2", f"    [*] --> {machine.initial}"]
    summarised: list[Transition] = []
    for t in machine.transitions:
        if summarise and machine.summarise_into and t.dst == machine.summarise_into:
            summarised.append(t)
            continue
        arrow = "-->"
        label = t.label.replace(":", " ")
        suffix = "" if t.kind == "flow" else f" [{t.kind}]"
        lines.append(f"    {t.src} {arrow} {t.dst} : {label}{suffix}")
    for state in sorted(machine.terminal):
        lines.append(f"    {state} --> [*]")
    if summarised and machine.summarise_into is not None:
        sources = ", ".join(t.src for t in summarised)
        lines.append(f"    note left of {machine.summarise_into} : reached from {sources}")
    return "\n".join(lines) + "\n"


def transition_table(machine: Machine = ORDER_MACHINE) -> str:
    """A Markdown table of every transition, in table order."""
    rows = ["| from | to | when | kind |", "|---|---|---|---|"]
    rows.extend(f"| {t.src} | {t.dst} | {t.label} | {t.kind} |" for t in machine.transitions)
    return "\n".join(rows) + "\n"


__all__ = [
    "ORDER_MACHINE",
    "RETURN_MACHINE",
    "Layout",
    "Machine",
    "layout",
    "mermaid",
    "order_flow_svg",
    "render_svg",
    "return_flow_svg",
    "transition_table",
]
