"""A pack station driven at random (hypothesis.stateful): totes, weights right and
wrong, SSCCs, print acks good and bad, devices going down and back, label scans.

After every step: commands go only to the station's scale and printers, valid, and a
label never to a printer known down or one that already failed it; every package
and order move is in its table; the station's memory matches the rows written; the
station is down exactly when its last word said so; a parcel is packed once;
decisions are deterministic.
"""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.unit.domain.floor.legal import check_pack, check_tote_moves, of
from wcs.domain.floor.effects import (
    Command,
    Effect,
    NextSscc,
    OrderMove,
    SavePackage,
    SaveTote,
    StationDown,
)
from wcs.domain.floor.machines import PACKAGE_MOVES, TOTE_MOVES, PackageState, ToteState
from wcs.domain.floor.pack import (
    Destination,
    DeviceState,
    LabelScan,
    PackEvent,
    PackStation,
    PrintAck,
    SsccDrawn,
    ToteAtPack,
    UnknownScan,
    Weight,
    decide,
)
from wcs.domain.gs1 import sscc
from wcs.domain.packing import Item
from wcs.domain.states import OrderState, find_transition

STATION = "PK1"
SCALE = "PK1-SCALE"
PRINTERS = ("PK1-PRN-1", "PK1-PRN-2")
DEVICES = (SCALE, *PRINTERS, "PK1-SCANNER")
TO = Destination("EXT-1", "Ada Lovelace", "1 Main St", "London", "N1 9GU", "GB", "standard")
ITEMS = st.lists(
    st.builds(
        Item,
        sku=st.sampled_from(["SKU-A", "SKU-B"]),
        qty=st.integers(1, 3),
        weight_g=st.sampled_from([50.0, 250.0, 900.0]),
        dims_mm=st.just((100, 80, 50)),
    ),
    min_size=1,
    max_size=2,
)
OPEN = (PackageState.WEIGHING, PackageState.LABELLING, PackageState.AWAITING_SCAN)


class PackStationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = PackStation(STATION, SCALE, PRINTERS)
        self.ids = itertools.count(1)
        self.rows: dict[str, SavePackage] = {}
        self.orders: dict[str, str] = {}
        self.packed: set[str] = set()
        self.down = False
        # SSCCs asked for and not drawn yet: the edge may answer after the station's
        # next events of the same micro-batch.
        self.asked: list[str] = []

    def apply(self, event: PackEvent, answer_now: bool = True) -> list[Effect]:
        before = self.state
        after, effects = decide(before, event)
        assert decide(before, event) == (after, effects), "not deterministic"
        check_pack(of(Command, effects), SCALE, PRINTERS)
        check_tote_moves(effects)
        for command in of(Command, effects):
            if command.name == "print":
                [package] = [p for p in after.packages if p.id == command.subject]
                assert command.device not in before.down_devices, "label to a printer down"
                assert command.device not in package.failed, "label to a printer that failed"
        self.state = after
        for effect in effects:
            self.write(effect)
        self.asked += [ask.package_id for ask in of(NextSscc, effects)]
        if answer_now:
            self.edge_answers()
        return effects

    def write(self, effect: Effect) -> None:
        match effect:
            case SavePackage():
                row = self.rows.get(effect.id)
                if row is None:
                    assert effect.state == PackageState.WEIGHING
                else:
                    src, dst = PackageState(row.state), PackageState(effect.state)
                    assert src in OPEN, "a finished package was written again"
                    assert dst == src or dst in PACKAGE_MOVES[src], (src, dst)
                    assert (effect.order_id, effect.carton) == (row.order_id, row.carton)
                if effect.state == PackageState.PACKED:
                    assert effect.id not in self.packed
                    self.packed.add(effect.id)
                    assert effect.document is not None and effect.document["sscc"] == effect.sscc
                self.rows[effect.id] = effect
            case OrderMove():
                now = self.orders[effect.order_id]
                if effect.src is not None:
                    assert effect.src == now, f"{effect}: the order is {now}"
                assert find_transition(now, effect.dst) is not None
                self.orders[effect.order_id] = effect.dst
            case SaveTote():
                assert ToteState(effect.state) in TOTE_MOVES[ToteState.TO_PACK]
            case StationDown():
                assert effect.station == STATION
                # Each label that finds no printer says the station is down (again, as
                # the handlers did); it comes up only from down.
                assert effect.down or self.down, "the station came up from up"
                self.down = effect.down

    # --- the floor ----------------------------------------------------------------------

    @rule(items=ITEMS, known=st.booleans())
    def tote_arrives(self, items: list[Item], known: bool) -> None:
        order = f"O{next(self.ids)}"
        self.orders[order] = OrderState.QC_PASSED
        self.apply(
            ToteAtPack(
                "PK1-SCANNER",
                f"T-{order}",
                order,
                OrderState.QC_PASSED if known else OrderState.PICKED,
                items,
                TO,
                f"p{next(self.ids)}",
            )
        )

    @rule(data=st.data(), stable=st.booleans(), answer_now=st.booleans())
    def scale_reads(self, data: st.DataObject, stable: bool, answer_now: bool) -> None:
        weighing = [p for p in self.state.packages if p.state == PackageState.WEIGHING]
        expected = weighing[-1].expected_g if weighing else 500.0
        offset = data.draw(st.sampled_from([0.0, 5.0, -19.0, 25.0, -300.0, 1000.0]))
        self.apply(Weight(SCALE, expected + offset, stable), answer_now)

    @rule()
    def edge_answers(self) -> None:
        asked, self.asked = self.asked, []
        for package_id in asked:
            self.apply(SsccDrawn(package_id, sscc(0, "0614141", next(self.ids))))

    @precondition(lambda self: any(p.state == PackageState.LABELLING for p in self.state.packages))
    @rule(data=st.data(), ok=st.booleans())
    def printer_answers(self, data: st.DataObject, ok: bool) -> None:
        package = data.draw(
            st.sampled_from([p for p in self.state.packages if p.state == PackageState.LABELLING])
        )
        if package.printer is not None:
            self.apply(PrintAck(package.id, package.printer, ok, None if ok else "jam"))

    @rule(device=st.sampled_from(DEVICES), now=st.sampled_from(["online", "offline", "fault"]))
    def device_reports(self, device: str, now: str) -> None:
        self.apply(DeviceState(device, now))

    @rule(data=st.data())
    def label_scanned(self, data: st.DataObject) -> None:
        known = [p.sscc for p in self.state.packages if p.sscc] + [
            r.sscc for r in self.rows.values() if r.sscc
        ]
        code = data.draw(st.sampled_from([*known, sscc(0, "0614141", 999_999)]))
        assert code is not None
        self.apply(LabelScan("PK1-SCANNER", code, "2026-12-06T08:00:00Z"))
        assert not [p for p in self.state.packages if p.sscc == code], "scanned, still open"

    @rule(code=st.text(max_size=80))
    def something_else_scanned(self, code: str) -> None:
        assert self.apply(UnknownScan("PK1-SCANNER", code)) != []

    # --- what must hold ---------------------------------------------------------------

    @invariant()
    def memory_matches_the_rows(self) -> None:
        held = {
            p.id: (p.order_id, p.state, p.measured_g, p.sscc, p.printer)
            for p in self.state.packages
            if p.id not in self.asked
        }
        rows = {
            r.id: (r.order_id, r.state, r.measured_g, r.sscc, r.printer)
            for r in self.rows.values()
            if r.state in OPEN and r.id not in self.asked
        }
        # A weight accepted is written with its SSCC, in the same transaction.
        assert held == rows
        assert len(self.asked) == len(set(self.asked)), "two SSCCs asked for one package"
        assert self.state.down == self.down

    @invariant()
    def orders_follow_their_packages(self) -> None:
        for row in self.rows.values():
            now = self.orders[row.order_id]
            want = {
                PackageState.PACKED: OrderState.PACKED,
                PackageState.REJECTED: OrderState.PICKED,
            }.get(PackageState(row.state), OrderState.PACKING)
            assert now == want, (row, now)


PackStationMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None
)
TestPackStation = PackStationMachine.TestCase
