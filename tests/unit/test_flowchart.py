"""The flow diagram is generated from the state table: complete, valid, self-contained."""

from __future__ import annotations

import dataclasses
import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from wcs.domain.states import (
    CANCELLABLE,
    RETURN_TRANSITIONS,
    TRANSITIONS,
    OrderState,
    ReturnState,
    Transition,
)
from wcs.flowchart import (
    ORDER_MACHINE,
    RETURN_MACHINE,
    Layout,
    Machine,
    layout,
    mermaid,
    order_flow_svg,
    render_svg,
    return_flow_svg,
    transition_table,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def state_groups(root: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for el in root.iter(f"{SVG}g"):
        el_id = el.get("id", "")
        if el_id.startswith("state-"):
            assert el_id not in found, f"duplicate {el_id}"
            found[el_id.removeprefix("state-")] = el
    return found


def drawn_transitions(root: ET.Element) -> list[tuple[str, str, str]]:
    return [
        (el.get("data-src", ""), el.get("data-dst", ""), el.get("data-kind", ""))
        for el in root.iter()
        if el.get("data-src") is not None
    ]


def table(moves: tuple[Transition, ...]) -> list[tuple[str, str, str]]:
    return [(str(t.src), str(t.dst), t.kind) for t in moves]


@pytest.mark.parametrize(
    ("svg", "states", "moves"),
    [
        (order_flow_svg(), set(OrderState), TRANSITIONS),
        (order_flow_svg({"picking": 4}), set(OrderState), TRANSITIONS),
        (return_flow_svg(), set(ReturnState), RETURN_TRANSITIONS),
    ],
    ids=["order", "order-with-counts", "return"],
)
def test_every_state_and_every_transition_of_the_table_is_drawn_once(
    svg: str, states: set[str], moves: tuple[Transition, ...]
) -> None:
    root = parse(svg)
    groups = state_groups(root)
    assert set(groups) == {str(s) for s in states}
    for name, group in groups.items():
        assert "wcs-state" in group.get("class", "").split()
        assert group.get("data-state") == name
        assert any(name == (t.text or "") for t in group.iter(f"{SVG}text"))
    drawn = drawn_transitions(root)
    assert sorted(drawn) == sorted(table(moves))  # each exactly once, nothing extra
    for el in root.iter():
        if el.get("data-src") is not None:
            title = el.find(f"{SVG}title")
            assert title is not None
            assert title.text is not None
            assert el.get("data-src", "") in title.text


def test_svg_is_self_contained() -> None:
    for svg in (order_flow_svg({"packed": 2}), return_flow_svg()):
        root = parse(svg)
        without_namespace = svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http" not in without_namespace
        assert "@import" not in svg
        assert "@font-face" not in svg
        for url in re.findall(r"url\(([^)]*)\)", svg):
            assert url.startswith("#"), url
        for el in root.iter():
            for name, value in el.attrib.items():
                if name.endswith("href"):
                    assert value.startswith("#"), value
            assert el.tag not in {f"{SVG}image", f"{SVG}script", f"{SVG}foreignObject"}
        ids = [el.get("id") for el in root.iter() if el.get("id")]
        assert len(ids) == len(set(ids))
        for url in re.findall(r"url\(#([^)]*)\)", svg):
            assert url in ids


def test_counts_fill_the_badges_and_highlight_busy_states() -> None:
    root = parse(order_flow_svg({"picking": 12, "packed": 3, "cancelled": 1}))
    groups = state_groups(root)
    badges = {
        el.get("id", "").removeprefix("count-"): el
        for el in root.iter(f"{SVG}g")
        if el.get("id", "").startswith("count-")
    }
    assert set(badges) == set(groups)

    def badge_text(state: str) -> str:
        text = badges[state].find(f"{SVG}text")
        assert text is not None
        return text.text or ""

    assert badge_text("picking") == "12"
    assert badge_text("packed") == "3"
    assert badge_text("cancelled") == "1"
    assert badge_text("shipped") == "0"
    assert "wcs-active" in groups["picking"].get("class", "")
    assert "wcs-active" not in groups["shipped"].get("class", "")
    assert "wcs-empty" in badges["shipped"].get("class", "")
    assert "wcs-empty" not in badges["picking"].get("class", "")


def test_without_counts_badges_are_present_but_empty() -> None:
    root = parse(order_flow_svg())
    for el in root.iter(f"{SVG}g"):
        if el.get("id", "").startswith("count-"):
            assert "wcs-empty" in el.get("class", "")
            text = el.find(f"{SVG}text")
            assert text is not None
            assert not text.text


def test_counts_for_unknown_states_are_refused() -> None:
    with pytest.raises(ValueError, match="teleported"):
        order_flow_svg({"teleported": 1})
    with pytest.raises(ValueError, match="picking"):
        return_flow_svg({"picking": 1})


def test_cancellations_are_marks_on_exactly_the_cancellable_states() -> None:
    root = parse(order_flow_svg())
    marks = {
        el.get("data-src")
        for el in root.iter(f"{SVG}g")
        if "wcs-cancel-mark" in el.get("class", "").split()
    }
    assert marks == {str(s) for s in CANCELLABLE}
    # The note is derived from the layout, not written by hand.
    assert "from any state before shipped" in order_flow_svg()
    lay = layout(ORDER_MACHINE)
    assert lay.summary is not None
    assert lay.summary.bracket_bottom is not None
    shipped = lay.nodes[OrderState.SHIPPED]
    assert lay.nodes[OrderState.CANCELLED].layer == shipped.layer


def _layer_of(lay: Layout, state: str) -> int:
    return lay.nodes[state].layer


@pytest.mark.parametrize("machine", [ORDER_MACHINE, RETURN_MACHINE], ids=["order", "return"])
def test_layout_reads_top_down_without_overlaps(machine: Machine) -> None:
    lay = layout(machine)
    boxes = list(lay.nodes.values())
    for a, b in itertools.combinations(boxes, 2):
        apart = a.right <= b.left or b.right <= a.left or a.bottom <= b.top or b.bottom <= a.top
        assert apart, f"{a.state} overlaps {b.state}"
    for box in boxes:
        assert box.left >= 0
        assert box.right <= lay.width
        assert box.bottom <= lay.height
    assert _layer_of(lay, machine.initial) == 0
    for edge in lay.edges:
        t = edge.transition
        src, dst = lay.nodes[t.src], lay.nodes[t.dst]
        if edge.upward:
            assert src.layer > dst.layer
            assert edge.points[0].y == src.top
            assert edge.points[-1].y == dst.bottom
        else:
            assert src.layer < dst.layer
            assert edge.points[0].y == src.bottom
            assert edge.points[-1].y == dst.top
        assert src.left <= edge.points[0].x <= src.right
        assert dst.left <= edge.points[-1].x <= dst.right
        # One waypoint per layer crossed.
        assert len(edge.points) == abs(src.layer - dst.layer) + 1
    # Every upward edge closes a cycle: with them reversed, the drawing is acyclic.
    forward = {(e.transition.src, e.transition.dst) for e in lay.edges if not e.upward}
    assert all(lay.nodes[s].layer < lay.nodes[d].layer for s, d in forward)


def test_the_happy_path_runs_straight_down() -> None:
    lay = layout(ORDER_MACHINE)
    path = [
        "received",
        "validated",
        "reserved",
        "pick_planned",
        "picking",
        "picked",
        "qc_passed",
        "packing",
        "packed",
        "allocated",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "closed",
    ]
    layers = [lay.nodes[s].layer for s in path]
    assert layers == sorted(layers)
    assert len(set(layers)) == len(layers)
    # Contingencies never pull the main line sideways by more than a node width.
    xs = [lay.nodes[s].x for s in path]
    assert max(xs) - min(xs) < 156


def test_labels_do_not_overlap_nodes_or_each_other() -> None:
    lay = layout(ORDER_MACHINE)
    boxes = [label.box() for label in lay.labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    for box in boxes:
        for node in lay.nodes.values():
            inside = box[0] < node.right and node.left < box[2]
            assert not (inside and box[1] < node.bottom and node.top < box[3])
    # Repeated labels into one state ("late" x3) are written once, still titled on each.
    shown = [(str(label.transition.dst), label.transition.label) for label in lay.labels]
    assert len(shown) == len(set(shown))
    expected = {(str(t.dst), t.label) for t in TRANSITIONS if t.kind != "cancel"}
    assert set(shown) == expected


def test_crossings_stay_few() -> None:
    # Guards the ordering heuristic: left in table order the order machine crosses 35 times.
    assert layout(ORDER_MACHINE).crossings <= 10
    assert layout(RETURN_MACHINE).crossings == 0


def test_any_machine_can_be_drawn() -> None:
    moves = (
        Transition("a", "b", "go"),
        Transition("b", "c", "go"),
        Transition("c", "a", "again", "contingency"),
        Transition("c", "d", "done"),
        Transition("a", "d", "skip", "contingency"),
        Transition("b", "x", "stop", "cancel"),
        Transition("a", "x", "stop", "cancel"),
    )
    machine = Machine(
        name="toy",
        title="Toy <machine> & co",
        states=("a", "b", "c", "d", "x", "lonely"),
        transitions=moves,
        initial="a",
        terminal=frozenset({"d"}),
        summarise_into="x",
    )
    root = parse(render_svg(machine, {"c": 2}))
    assert set(state_groups(root)) == {"a", "b", "c", "d", "x", "lonely"}
    assert sorted(drawn_transitions(root)) == sorted(table(moves))
    lay = layout(machine)
    assert [e.upward for e in lay.edges if e.transition.label == "again"] == [True]
    # "lonely" shares the top layer but cannot be cancelled: a bracket over the band
    # would claim otherwise, so only the marks and a counted note are drawn.
    assert lay.summary is not None
    assert lay.summary.bracket_bottom is None
    assert lay.summary.note % lay.summary.note_params == "from the 2 states marked ×"
    assert "Toy &lt;machine&gt; &amp; co" in render_svg(machine)
    without_lonely = dataclasses.replace(machine, states=("a", "b", "c", "d", "x"))
    summary = layout(without_lonely).summary
    assert summary is not None
    assert summary.bracket_bottom is not None
    assert summary.note % summary.note_params == "from any state before c"


def test_mermaid_lists_every_transition() -> None:
    full = mermaid(ORDER_MACHINE, summarise=False)
    assert full.startswith("stateDiagram-v2\n")
    for t in TRANSITIONS:
        assert f"    {t.src} --> {t.dst} : " in full
    short = mermaid(ORDER_MACHINE)
    assert "--> cancelled" not in short
    note = next(line for line in short.splitlines() if "note" in line)
    assert {s.strip() for s in note.split(":", 1)[1].removeprefix(" reached from").split(",")} == {
        str(s) for s in CANCELLABLE
    }
    returns = mermaid(RETURN_MACHINE)
    for t in RETURN_TRANSITIONS:
        assert f"    {t.src} --> {t.dst} : {t.label}" in returns


def test_markdown_table_has_a_row_per_transition() -> None:
    rows = transition_table().splitlines()[2:]
    assert rows == [f"| {t.src} | {t.dst} | {t.label} | {t.kind} |" for t in TRANSITIONS]
