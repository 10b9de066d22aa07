"""Conveyor decision points (``wcs.domain.floor.conveyor``): which lane, which pack
station, and what the tote's row says afterwards."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.domain.floor.legal import of, payload
from wcs.domain.conveyor import PackStation
from wcs.domain.floor.conveyor import (
    TOTE_STATE_FOR_LANE,
    Arrival,
    ConveyorPoint,
    decide,
    has_lane,
)
from wcs.domain.floor.effects import Command, Effect, Record, SaveTote
from wcs.domain.floor.machines import ToteState
from wcs.domain.states import OrderState

DIVERTER = "CV1-DIV"
FULL = ConveyorPoint("CV1", DIVERTER, frozenset({"qc", "pack:P1", "pack:P2", "outbound"}))
STATIONS = (PackStation("P1", True, 3), PackStation("P2", True, 1))


def arrive(
    point: ConveyorPoint,
    state: str | None,
    stations: Sequence[PackStation] = STATIONS,
    *,
    tote: bool = True,
    code: str = "T-1",
) -> tuple[str, str | None, list[Effect]]:
    order = "O1" if state is not None else None
    after, effects = decide(point, Arrival("CV1-SCAN", code, "CV1", order, state, tote, stations))
    assert after == point  # a point holds nothing between arrivals
    assert decide(point, Arrival("CV1-SCAN", code, "CV1", order, state, tote, stations)) == (
        after,
        effects,
    )
    [command] = of(Command, effects)
    assert (command.device, command.name) == (point.device, "route")
    route = payload(command).model_dump()
    return route["lane"], route["station"], list(effects)


@pytest.mark.parametrize(
    ("state", "lane", "station"),
    [
        (OrderState.PICKED, "qc", None),
        (OrderState.QC_PASSED, "pack", "P2"),  # the least loaded
        (OrderState.PACKED, "outbound", None),
        (OrderState.ALLOCATED, "outbound", None),
        (OrderState.QC_FAILED, "exception", None),
        (OrderState.CANCELLED, "exception", None),
        (OrderState.PICKING, "exception", None),
        (None, "exception", None),  # unknown tote or parcel
    ],
)
def test_each_order_state_has_its_lane(state: str | None, lane: str, station: str | None) -> None:
    got_lane, got_station, effects = arrive(FULL, state)
    assert (got_lane, got_station) == (lane, station)
    [record] = of(Record, effects)
    assert record.kind == "route" and record.ok == (lane != "exception")
    assert record.detail["lane"] == lane and record.detail["point"] == "CV1"


@pytest.mark.parametrize(
    ("stations", "station"),
    [
        ((PackStation("P1", True, 2), PackStation("P2", True, 2)), "P1"),  # tie: by name
        ((PackStation("P1", True, 5), PackStation("P2", False, 0)), "P1"),  # P2 is down
        ((PackStation("P1", True, 0), PackStation("P3", True, 0)), "P1"),  # no lane to P3
        ((PackStation("P3", True, 0), PackStation("P2", True, 9)), "P2"),
    ],
)
def test_a_qc_passed_tote_goes_to_the_least_loaded_station_it_can_reach(
    stations: tuple[PackStation, ...], station: str
) -> None:
    assert arrive(FULL, OrderState.QC_PASSED, stations)[:2] == ("pack", station)


@pytest.mark.parametrize(
    ("routes", "state", "stations"),
    [
        ({"pack:P1", "outbound"}, OrderState.PICKED, STATIONS),  # no QC lane
        ({"qc", "pack:P1"}, OrderState.PACKED, STATIONS),  # no outbound lane
        ({"qc", "pack:P1"}, OrderState.QC_PASSED, (PackStation("P1", False, 0),)),
        ({"qc", "pack"}, OrderState.QC_PASSED, STATIONS),  # no lane to a named station
    ],
)
def test_no_lane_to_send_it_sends_it_to_exception(
    routes: set[str], state: str, stations: tuple[PackStation, ...]
) -> None:
    point = ConveyorPoint("CV1", DIVERTER, frozenset(routes))
    assert arrive(point, state, stations)[:2] == ("exception", None)


def test_without_pack_stations_known_a_plain_pack_lane_takes_it() -> None:
    point = ConveyorPoint("CV1", DIVERTER, frozenset({"qc", "pack"}))
    assert arrive(point, OrderState.QC_PASSED, ())[:2] == ("pack", None)


@pytest.mark.parametrize(
    ("state", "tote_state", "station"),
    [
        (OrderState.PICKED, ToteState.TO_QC, None),
        (OrderState.QC_PASSED, ToteState.TO_PACK, "P2"),
        (OrderState.PACKED, ToteState.TO_OUTBOUND, None),
        (OrderState.QC_FAILED, ToteState.EXCEPTION, None),
    ],
)
def test_a_totes_row_follows_the_decision(
    state: str, tote_state: ToteState, station: str | None
) -> None:
    _, _, effects = arrive(FULL, state)
    assert of(SaveTote, effects) == [SaveTote("T-1", "O1", tote_state, station)]


def test_a_parcel_is_routed_and_has_no_tote_row() -> None:
    lane, _, effects = arrive(FULL, OrderState.PACKED, tote=False, code="00006141410000000017")
    assert lane == "outbound"
    assert of(SaveTote, effects) == []


def test_lane_names() -> None:
    assert has_lane(FULL, "pack", "P1") and not has_lane(FULL, "pack", "P3")
    assert has_lane(FULL, "pack", None) and has_lane(FULL, "qc", None)
    assert not has_lane(FULL, "exception", None)
    assert set(TOTE_STATE_FOR_LANE) == {"qc", "pack", "outbound"}


ROUTES = ["qc", "pack", "pack:P1", "pack:P2", "pack:P3", "outbound", "exception"]


@settings(max_examples=300, deadline=None)
@given(
    routes=st.frozensets(st.sampled_from(ROUTES)),
    state=st.none() | st.sampled_from(list(OrderState)),
    stations=st.lists(
        st.builds(
            PackStation,
            id=st.sampled_from(["P1", "P2", "P3", "P4"]),
            available=st.booleans(),
            load=st.integers(0, 50),
        ),
        max_size=4,
        unique_by=lambda s: s.id,
    ),
    tote=st.booleans(),
)
def test_every_route_is_one_the_diverter_has(
    routes: frozenset[str], state: str | None, stations: list[PackStation], tote: bool
) -> None:
    point = ConveyorPoint("CV1", DIVERTER, routes)
    lane, station, effects = arrive(point, state, stations, tote=tote)
    if lane != "exception":
        assert has_lane(point, lane, station)
    if lane == "pack" and station is not None:
        chosen = next(s for s in stations if s.id == station)
        reachable = [s for s in stations if s.available and f"pack:{s.id}" in routes]
        assert chosen.available and chosen.load == min(s.load for s in reachable)
    for saved in of(SaveTote, effects):
        assert saved.state == TOTE_STATE_FOR_LANE.get(lane, ToteState.EXCEPTION)
        assert saved.station == station
    assert bool(of(SaveTote, effects)) == tote
