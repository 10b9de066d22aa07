"""A plan view of the floor, drawn from the floor file alone (SVG, no I/O).

The floor file says which devices and stations exist and how the conveyor's decision
points route (lanes to QC, pack stations, outbound, exception); it has no
coordinates, so the plan is laid out from that structure, left to right in the
order a tote travels:

    pick aisles (PTL slots by aisle and bay) and pick stations
      -> first decision points -> QC and pack stations -> later decision points
      -> outbound dock / exception lane

Everything the page updates live has an id: ``map-dev-<device>`` (class
``state-<online|offline|fault>``), ``map-slot-<panel>-<n>`` (class ``lit`` and a
``.qty`` text), ``map-station-<id>`` and ``map-totes-<place>`` (a count badge).
Location codes are ``<area>-<aisle>-<bay>-<level>`` (e.g. ``A-01-02-1``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from wcs.floor import DiverterDevice, Floor, PtlDevice

SLOT_W, SLOT_H = 54.0, 26.0
AISLE_GAP = 86.0
BAY_GAP = 32.0
MARGIN = 20.0
BOX_W, BOX_H = 172.0, 64.0
DEV = 10.0
COL_GAP = 70.0
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"

STYLE = f"""
.fm text {{ font-family: {FONT}; font-size: 11px; fill: #1d2330; }}
.fm .title {{ font-size: 12px; font-weight: 600; }}
.fm .muted {{ fill: #667085; font-size: 10px; }}
.fm .aisle {{ fill: #eef1f5; stroke: #d0d5dd; }}
.fm .slot rect {{ fill: #fff; stroke: #98a2b3; }}
.fm .slot.lit rect {{ fill: #3ddc84; stroke: #1b7f47; stroke-width: 2; }}
.fm .slot.lit.red rect {{ fill: #f97066; stroke: #b42318; }}
.fm .slot .qty {{ font-weight: 700; font-size: 12px; }}
.fm .box {{ fill: #fff; stroke: #667085; stroke-width: 1.5; rx: 6; }}
.fm .station.down .box {{ stroke: #c62828; stroke-width: 3; fill: #fdecea; }}
.fm .station.busy .box {{ stroke: #1f6feb; stroke-width: 2.5; }}
.fm .conveyor {{ stroke: #98a2b3; stroke-width: 6; fill: none; stroke-linecap: round; }}
.fm .lane {{ stroke: #b8c0cc; stroke-width: 3; fill: none; stroke-dasharray: 6 4; }}
.fm .dev rect, .fm .dev polygon {{ fill: #d0d5dd; stroke: #667085; }}
.fm .dev.state-online rect, .fm .dev.state-online polygon {{ fill: #3ddc84; stroke: #1b7f47; }}
.fm .dev.state-fault rect, .fm .dev.state-fault polygon {{ fill: #fdb022; stroke: #b54708; }}
.fm .dev.state-offline rect, .fm .dev.state-offline polygon {{ fill: #f04438; stroke: #912018; }}
.fm .totes circle {{ fill: #1f6feb; }}
.fm .totes text {{ fill: #fff; font-size: 10px; font-weight: 700; }}
.fm .totes.empty {{ display: none; }}
"""


@dataclass(frozen=True, slots=True)
class _Slot:
    panel: str
    number: int
    location: str
    aisle: int
    bay: int


def _parse_location(code: str) -> tuple[int, int] | None:
    parts = code.split("-")
    if len(parts) < 3 or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1]), int(parts[2])


def _attr(value: str) -> str:
    return quoteattr(value)


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def text(self, x: float, y: float, content: str, cls: str = "", anchor: str = "start") -> None:
        klass = f' class="{cls}"' if cls else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}"{klass} text-anchor="{anchor}">{escape(content)}</text>'
        )

    def device(self, device_id: str, kind: str, x: float, y: float) -> None:
        """A device as a small square (a diamond for a diverter) with its id beside."""
        self.add(f'<g class="dev" id={_attr("map-dev-" + device_id)}>')
        self.add(f"<title>{escape(device_id)} ({kind})</title>")
        if kind == "diverter":
            h = DEV
            self.add(
                f'<polygon points="{x:.1f},{y - h:.1f} {x + h:.1f},{y:.1f} {x:.1f},{y + h:.1f} '
                f'{x - h:.1f},{y:.1f}"/>'
            )
        else:
            self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{DEV}" height="{DEV}" rx="2"/>')
        self.add("</g>")

    def totes(self, place: str, x: float, y: float) -> None:
        self.add(f'<g class="totes empty" id={_attr("map-totes-" + place)}>')
        self.add("<title></title>")
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="10"/>')
        self.add(f'<text x="{x:.1f}" y="{y + 3.5:.1f}" text-anchor="middle">0</text>')
        self.add("</g>")


def floor_map_svg(floor: Floor) -> str:
    svg = _Svg()
    slots: list[_Slot] = []
    for device in floor.devices:
        if isinstance(device, PtlDevice):
            for number, location in sorted(device.slots.items()):
                where = _parse_location(location)
                if where is not None:
                    slots.append(_Slot(device.id, number, location, *where))
    aisles = sorted({s.aisle for s in slots})
    bays = max((s.bay for s in slots), default=0)
    aisle_x = {a: MARGIN + i * AISLE_GAP for i, a in enumerate(aisles)}
    top = MARGIN + 34.0
    pick_w = max(len(aisles) * AISLE_GAP, BOX_W + 20)

    # -- pick aisles and their slots ---------------------------------------------------
    svg.text(MARGIN, MARGIN + 10, "pick", "title")
    for aisle, x in aisle_x.items():
        height = bays * BAY_GAP + 8
        svg.add(
            f'<rect class="aisle" x="{x - 6:.1f}" y="{top - 6:.1f}" width="{SLOT_W + 12:.1f}" '
            f'height="{height:.1f}" rx="4"/>'
        )
        svg.text(x + SLOT_W / 2, top - 10, f"aisle {aisle}", "muted", "middle")
    for slot in slots:
        x, y = aisle_x[slot.aisle], top + (slot.bay - 1) * BAY_GAP
        sid = f"map-slot-{slot.panel}-{slot.number}"
        svg.add(f'<g class="slot" id={_attr(sid)}>')
        svg.add(f"<title>{escape(slot.location)} · {escape(slot.panel)} slot {slot.number}</title>")
        svg.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{SLOT_W}" height="{SLOT_H}" rx="3"/>')
        svg.text(x + 4, y + 11, slot.location.split("-", 1)[-1], "muted")
        svg.add(
            f'<text class="qty" x="{x + SLOT_W - 5:.1f}" y="{y + 21:.1f}" text-anchor="end"></text>'
        )
        svg.add("</g>")
    # Panels: their status square above the first aisle they serve.
    panel_aisles: dict[str, int] = {}
    for slot in slots:
        panel_aisles.setdefault(slot.panel, slot.aisle)
    panel_row = top + bays * BAY_GAP + 14
    for panel, aisle in sorted(panel_aisles.items(), key=lambda p: p[1]):
        x = aisle_x[aisle]
        svg.device(panel, "ptl", x, panel_row)
        svg.text(x + DEV + 4, panel_row + 9, panel, "muted")

    # -- stations and decision points -------------------------------------------------
    stations = {s.id: s for s in floor.stations}
    diverters = [d for d in floor.devices if isinstance(d, DiverterDevice)]
    first = [d for d in diverters if d.zone != "outbound"]
    last = [d for d in diverters if d.zone == "outbound"]
    pick_stations = [s for s in floor.stations if s.kind == "pick"]
    work = [s for s in floor.stations if s.kind in ("qc", "pack", "returns")]

    boxes: dict[str, tuple[float, float]] = {}

    def station_box(station_id: str, x: float, y: float) -> None:
        station = stations[station_id]
        boxes[station_id] = (x, y)
        svg.add(f'<g class="station" id={_attr("map-station-" + station_id)}>')
        svg.add(f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}"/>')
        svg.text(x + 8, y + 16, f"{station.id} · {station.kind}", "title")
        members = [
            device_id
            for device_id in (station.scanner, station.scale, station.printer)
            if device_id is not None
        ]
        dx = x + 8
        for device_id in members:
            kind = floor.device(device_id).kind
            svg.device(device_id, kind, dx, y + 26)
            svg.text(dx, y + 50, device_id, "muted")
            dx += max(46.0, 6.5 * len(device_id) + 6)
        svg.text(x + BOX_W - 8, y + 16, "", "muted at-hand", "end")
        svg.add("</g>")
        svg.totes(station_id, x + BOX_W - 4, y + BOX_H - 4)

    pick_y = panel_row + 34
    for i, station in enumerate(pick_stations):
        station_box(station.id, MARGIN + i * (BOX_W + 16), pick_y)
    height = pick_y + BOX_H + MARGIN

    col1 = MARGIN + pick_w + COL_GAP
    col2 = col1 + COL_GAP + 40
    col3 = col2 + BOX_W + COL_GAP
    col4 = col3 + COL_GAP + 20
    y = top
    for station in work:
        station_box(station.id, col2, y)
        y += BOX_H + 22
    height = max(height, y + MARGIN) + 24  # room for lanes along the bottom
    sinks = {"outbound": (col4, top + 20.0), "exception": (col4, y - BOX_H - 22 + 20.0)}
    for name, (sx, sy) in sinks.items():
        svg.add(f'<g class="sink" id={_attr("map-sink-" + name)}>')
        svg.add(f'<rect class="box" x="{sx:.1f}" y="{sy:.1f}" width="110" height="40"/>')
        svg.text(sx + 8, sy + 24, name, "title")
        svg.add("</g>")
        svg.totes(name, sx + 106, sy + 36)

    mid = (top + y) / 2 - 20
    points: dict[str, tuple[float, float]] = {}
    for i, d in enumerate(first):
        points[d.id] = (col1, mid + i * 60)
    for i, d in enumerate(last):
        points[d.id] = (col3, mid + i * 60)

    # Conveyor from the pick stations to the first decision point.
    for sid in (s.id for s in pick_stations):
        bx, by = boxes[sid]
        for d in first[:1]:
            px, py = points[d.id]
            svg.add(
                f'<path class="conveyor" d="M{bx + BOX_W:.1f},{by + BOX_H / 2:.1f} '
                f'H{px - 40:.1f} V{py:.1f} H{px:.1f}"/>'
            )
    # Pack stations to the outbound decision point.
    for station in work:
        if station.kind != "pack":
            continue
        bx, by = boxes[station.id]
        for d in last[:1]:
            px, py = points[d.id]
            svg.add(
                f'<path class="conveyor" d="M{bx + BOX_W:.1f},{by + BOX_H / 2:.1f} '
                f'H{px - 30:.1f} V{py:.1f} H{px:.1f}"/>'
            )
    # Lanes from each decision point to where they lead, under the boxes; a lane that
    # would cross a station box runs along the bottom of the plan instead.
    bottom = height - MARGIN / 2
    lanes = _Svg()
    for d in diverters:
        px, py = points[d.id]
        for _number, route in sorted(d.lanes.items()):
            lane, _, target = route.partition(":")
            if lane == "pack" and target in boxes:
                tx, ty = boxes[target]
            elif lane == "qc":
                qc = next((s.id for s in work if s.kind == "qc"), None)
                if qc is None:
                    continue
                tx, ty = boxes[qc]
            elif lane == "outbound" and d in first and last:
                tx, ty = points[last[0].id]
                lanes.add(
                    f'<path class="lane" d="M{px:.1f},{py:.1f} V{bottom:.1f} H{tx:.1f} V{ty:.1f}"/>'
                )
                continue
            elif lane in sinks:
                sx, sy = sinks[lane]
                if d in first:
                    lanes.add(
                        f'<path class="lane" d="M{px:.1f},{py:.1f} V{bottom:.1f} '
                        f'H{sx - 24:.1f} V{sy + 20:.1f} H{sx:.1f}"/>'
                    )
                    continue
                tx, ty = sx, sy
            else:
                continue
            lanes.add(
                f'<path class="lane" d="M{px:.1f},{py:.1f} H{(px + tx) / 2:.1f} '
                f'V{ty + 20:.1f} H{tx:.1f}"/>'
            )
    marks = _Svg()
    for d in diverters:
        px, py = points[d.id]
        marks.device(d.id, "diverter", px, py)
        marks.text(px, py - 16, f"{d.point} · {d.id}", "muted", "middle")
        marks.totes(f"point-{d.point}", px + 16, py + 16)
    svg.parts = lanes.parts + svg.parts + marks.parts

    width = col4 + 130
    body = "\n".join(svg.parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fm" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" width="{width:.0f}" height="{height:.0f}" role="img" '
        f'aria-label="floor plan"><style>{STYLE}</style>{body}</svg>'
    )


def tote_places(floor: Floor) -> dict[str, str]:
    """Where a tote in each state is drawn: state -> place id suffix (see the totes
    markers). ``{station}`` is the tote's station."""
    del floor
    return {
        "picking": "{station}",
        "to_qc": "{qc}",
        "qc": "{qc}",
        "to_pack": "{station}",
        "packing": "{station}",
        "exception": "exception",
    }


def group_by_place(floor: Floor, totes: list[tuple[str, str, str | None]]) -> dict[str, list[str]]:
    """Tote codes per map place, from (code, state, station) rows."""
    qc = next((s.id for s in floor.stations if s.kind == "qc"), "exception")
    places = tote_places(floor)
    result: dict[str, list[str]] = defaultdict(list)
    for code, state, station in totes:
        pattern = places.get(state)
        if pattern is None:
            continue
        place = pattern.format(station=station or qc, qc=qc)
        result[place].append(code)
    return dict(result)
