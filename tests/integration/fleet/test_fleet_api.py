"""Own-fleet dispatch over real HTTP on SQLite and PostgreSQL: couriers, planning a day
with windows and capacity, locks kept through re-plans, parcels added later, a courier
dropping out."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import PROBLEM, Tokens, auth
from tests.integration.fleet.conftest import (
    courier_body,
    own_fleet_parcels,
    plan,
    put_couriers,
    routed,
    today,
)
from wcs.services.fleet_plans import FleetReplanner, PlanningConfig
from wcs.settings import Settings


def _utc(hours: int, minutes: int = 0) -> datetime:
    return datetime.combine(today(), time(hours, minutes), tzinfo=UTC)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _check_day(day: dict[str, Any], couriers: dict[str, dict[str, Any]]) -> None:
    """Independently of the planner: capacity, shift and every window respected."""
    for route in day["routes"]:
        spec = couriers[route["courier_id"]]
        stops = route["stops"]
        assert [s["seq"] for s in stops] == list(range(1, len(stops) + 1))
        assert sum(s["weight_kg"] for s in stops) <= spec["capacity_kg"] + 1e-9
        assert sum(s["volume_l"] for s in stops) / 1000 <= spec["capacity_m3"] + 1e-9
        start_h, start_m = map(int, spec["shift_start"].split(":"))
        end_h, end_m = map(int, spec["shift_end"].split(":"))
        assert _ts(route["depart_at"]) >= _utc(start_h, start_m)
        assert _ts(route["return_at"]) <= _utc(end_h, end_m)
        etas = [_ts(s["eta"]) for s in stops]
        assert etas == sorted(etas)
        for stop in stops:
            if stop["window_start"]:
                assert _ts(stop["eta"]) >= _ts(stop["window_start"]), stop
            if stop["window_end"]:
                assert _ts(stop["eta"]) <= _ts(stop["window_end"]), stop


async def test_plan_a_day_within_windows_capacity_and_shifts(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    couriers = {
        # A cargo bike: room for three of these parcels only.
        "courier-1": courier_body(name="Kim (bike)", capacity_kg=1.8, capacity_m3=0.2),
        "courier-2": courier_body(name="Ola (van)", shift_start="08:00", shift_end="20:00"),
    }
    async with api.client() as admin:
        shipments = await own_fleet_parcels(admin, engine, site, tokens, 7)
        await put_couriers(admin, tokens, couriers)
        listed = await admin.get("/api/v1/fleet/couriers", headers=auth(tokens.supervisor))
        assert [c["id"] for c in listed.json()] == ["courier-1", "courier-2"]
        assert listed.json()[0]["shift_start"] == "06:00"

        # Two customers booked slots.
        early, late = shipments[0]["id"], shipments[1]["id"]
        for shipment_id, start, end, note in (
            (early, _utc(9), _utc(10), "ring at Schmidt"),
            (late, _utc(17), _utc(18, 30), None),
        ):
            r = await admin.put(
                f"/api/v1/fleet/parcels/{shipment_id}",
                json={
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "note": note,
                },
                headers=auth(tokens.dispatcher),
            )
            assert r.status_code == 200, r.text

        day = await plan(admin, tokens)
        assert day["plan"]["version"] == 1 and day["plan"]["trigger"] == "plan"
        assert day["plan"]["unassigned"] == []
        assert day["plan"]["solver"].startswith("vroom")
        plan_of = routed(day)
        assert sorted(plan_of) == sorted(s["id"] for s in shipments)
        _check_day(day, couriers)
        bike = [r for r in day["routes"] if r["courier_id"] == "courier-1"]
        assert not bike or len(bike[0]["stops"]) <= 3
        stop = next(s for r in day["routes"] for s in r["stops"] if s["shipment_id"] == early)
        assert stop["note"] == "ring at Schmidt" and stop["geo_source"] == "postal_code"
        assert stop["deliver_to"]["city"] == "Berlin"
        assert _utc(9) <= _ts(stop["eta"]) <= _utc(10)

        # The plan gave each parcel its courier, so the right courier may deliver it.
        for shipment in shipments:
            r = await admin.get(f"/api/v1/shipments/{shipment['id']}")
            assert r.json()["courier_id"] == plan_of[shipment["id"]]

        # The day reads back the same; a route alone too.
        again = await admin.get(
            "/api/v1/fleet/routes",
            params={"date": today().isoformat()},
            headers=auth(tokens.supervisor),
        )
        assert again.status_code == 200 and routed(again.json()) == plan_of
        one = day["routes"][0]
        r = await admin.get(f"/api/v1/fleet/routes/{one['id']}", headers=auth(tokens.dispatcher))
        assert r.status_code == 200 and r.json()["stops"] == one["stops"]

        # Who may plan.
        for token in (tokens.customer_service, tokens.courier, tokens.customer):
            r = await admin.post("/api/v1/fleet/plan", json={}, headers=auth(token))
            assert r.status_code == 403, r.text
            assert r.headers["content-type"] == PROBLEM
        r = await admin.put(
            "/api/v1/fleet/couriers/courier-9", json=courier_body(), headers=auth(tokens.courier)
        )
        assert r.status_code == 403
        bad = await admin.put(
            "/api/v1/fleet/couriers/courier-9",
            json=courier_body(shift_start="18:00", shift_end="08:00"),
            headers=auth(tokens.dispatcher),
        )
        assert bad.status_code == 422 and "shift" in bad.json()["detail"]


async def test_locked_route_survives_replans_and_new_parcels_are_planned(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    couriers = {f"courier-{n}": courier_body(name=f"Driver {n}") for n in (1, 2, 3)}
    async with api.client() as admin:
        await own_fleet_parcels(admin, engine, site, tokens, 6)
        await put_couriers(admin, tokens, couriers)
        first = await plan(admin, tokens)
        locked = max(first["routes"], key=lambda r: len(r["stops"]))
        r = await admin.post(
            f"/api/v1/fleet/routes/{locked['id']}/lock", headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 200 and r.json()["locked"] is True
        assert r.json()["locked_by"] == "dispatch-desk"

        # A parcel arrives at the dock after planning; the dispatcher plans again.
        [extra] = await own_fleet_parcels(admin, engine, site, tokens, 1, start=6)
        second = await plan(admin, tokens)
        assert second["plan"]["version"] == 2
        kept = next(r for r in second["routes"] if r["id"] == locked["id"])
        assert [s["shipment_id"] for s in kept["stops"]] == [
            s["shipment_id"] for s in locked["stops"]
        ]
        assert kept["locked"] and kept["plan_id"] == first["plan"]["id"]
        assert routed(second)[extra["id"]] != locked["courier_id"]
        assert len(routed(second)) == 7
        _check_day(second, couriers)
        # The unlocked routes of the first plan are replaced, not active twice.
        old = [r["id"] for r in first["routes"] if r["id"] != locked["id"]]
        for route_id in old:
            r = await admin.get(f"/api/v1/fleet/routes/{route_id}", headers=auth(tokens.dispatcher))
            assert r.json()["status"] == "replaced"
            lock = await admin.post(
                f"/api/v1/fleet/routes/{route_id}/lock", headers=auth(tokens.dispatcher)
            )
            assert lock.status_code == 409

        # No dispatcher this time: the re-planner notices the new parcel by itself.
        [late] = await own_fleet_parcels(admin, engine, site, tokens, 1, start=7)
        replanner = FleetReplanner(engine, PlanningConfig.from_settings(Settings()))
        assert await replanner.run_once() == [today()]
        assert await replanner.run_once() == []  # nothing new: no endless re-planning
        third = (await admin.get("/api/v1/fleet/routes", headers=auth(tokens.dispatcher))).json()
        assert third["plan"]["version"] == 3 and third["plan"]["trigger"] == "new_parcels"
        assert late["id"] in routed(third) and len(routed(third)) == 8
        assert any(r["id"] == locked["id"] for r in third["routes"])
        _check_day(third, couriers)

        r = await admin.post(
            f"/api/v1/fleet/routes/{locked['id']}/unlock", headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 200 and r.json()["locked"] is False
        assert (
            await admin.post("/api/v1/fleet/routes/frt_nope/lock", headers=auth(tokens.dispatcher))
        ).status_code == 404


async def test_courier_dropping_out_is_planned_around(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    couriers = {f"courier-{n}": courier_body(name=f"Driver {n}") for n in (1, 2, 3)}
    async with api.client() as admin:
        await own_fleet_parcels(admin, engine, site, tokens, 6)
        await put_couriers(admin, tokens, couriers)
        first = await plan(admin, tokens)
        before = routed(first)
        leaving = max(couriers, key=lambda c: sum(1 for v in before.values() if v == c))
        theirs = [s for s, c in before.items() if c == leaving]
        assert theirs
        # Even a locked route goes when its courier cannot drive.
        route = next(r for r in first["routes"] if r["courier_id"] == leaving)
        await admin.post(
            f"/api/v1/fleet/routes/{route['id']}/lock", headers=auth(tokens.dispatcher)
        )

        r = await admin.post(
            f"/api/v1/fleet/couriers/{leaving}/unavailable",
            json={"reason": "van broke down"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200, r.text
        after = r.json()
        assert after["replanned"] is True and after["courier_id"] == leaving
        assert after["plan"]["trigger"] == "courier_unavailable"
        assert after["plan"]["note"] == f"{leaving}: van broke down"
        assert {"courier_id": leaving, "reason": "van broke down"} in after["absent"]
        now = routed(after)
        assert leaving not in now.values()
        assert sorted(now) == sorted(before)  # everything still planned, by the others
        _check_day(after, couriers)
        for shipment_id in theirs:
            r = await admin.get(f"/api/v1/shipments/{shipment_id}")
            assert r.json()["courier_id"] == now[shipment_id] != leaving

        # Saying it twice changes nothing more.
        again = await admin.post(
            f"/api/v1/fleet/couriers/{leaving}/unavailable",
            json={"reason": "van broke down"},
            headers=auth(tokens.dispatcher),
        )
        assert again.json()["replanned"] is False and again.json()["plan"]["version"] == 2

        # With every courier gone, parcels are listed with the reason instead of lost.
        for other in couriers:
            if other != leaving:
                await admin.post(
                    f"/api/v1/fleet/couriers/{other}/unavailable",
                    json={"reason": "sick"},
                    headers=auth(tokens.dispatcher),
                )
        empty = (await admin.get("/api/v1/fleet/routes", headers=auth(tokens.dispatcher))).json()
        assert empty["routes"] == []
        reasons = {u["reason"] for u in empty["plan"]["unassigned"]}
        assert reasons == {"no courier is available that day"}
        assert len(empty["plan"]["unassigned"]) == 6

        missing = await admin.post(
            "/api/v1/fleet/couriers/nobody/unavailable",
            json={"reason": "x"},
            headers=auth(tokens.dispatcher),
        )
        assert missing.status_code == 404


async def test_courier_registry(api: Served, tokens: Tokens) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, headers=auth(tokens.dispatcher)) as desk:
        created = await desk.put(
            "/api/v1/fleet/couriers/courier-7",
            json=courier_body(name="Ana", end={"lat": 52.52, "lon": 13.40}),
        )
        assert created.status_code == 201, created.text
        assert created.json()["end"] == {"lat": 52.52, "lon": 13.40}
        replaced = await desk.put(
            "/api/v1/fleet/couriers/courier-7",
            json=courier_body(name="Ana B.", shift_start="07:30", shift_end="26:00"),
        )
        assert replaced.status_code == 200
        assert replaced.json()["name"] == "Ana B." and replaced.json()["shift_end"] == "26:00"
        assert replaced.json()["end"] is None
        # A courier with a history (an absence) is kept: retired, not deleted.
        absent = await desk.post(
            "/api/v1/fleet/couriers/courier-7/unavailable", json={"reason": "van broken"}
        )
        assert absent.status_code == 200, absent.text
        kept = await desk.delete("/api/v1/fleet/couriers/courier-7")
        assert kept.status_code == 409 and "active false" in kept.json()["detail"]
        retired = await desk.put(
            "/api/v1/fleet/couriers/courier-7", json=courier_body(name="Ana B.", active=False)
        )
        assert retired.status_code == 200 and retired.json()["active"] is False
        active = await desk.get("/api/v1/fleet/couriers", params={"active": "true"})
        assert active.json() == []
        assert (await desk.get("/api/v1/fleet/couriers/courier-7")).json()["active"] is False
        # One entered by mistake is deleted: gone for good.
        assert (
            await desk.put("/api/v1/fleet/couriers/typo", json=courier_body())
        ).status_code == 201
        assert (await desk.delete("/api/v1/fleet/couriers/typo")).status_code == 204
        assert (await desk.get("/api/v1/fleet/couriers/typo")).status_code == 404
        assert (await desk.delete("/api/v1/fleet/couriers/typo")).status_code == 404
        assert (await desk.get("/api/v1/fleet/couriers/nobody")).status_code == 404
        bad_id = await desk.put("/api/v1/fleet/couriers/bad%20id", json=courier_body())
        assert bad_id.status_code == 422
        extra = await desk.put("/api/v1/fleet/couriers/c8", json=courier_body(colour="red"))
        assert extra.status_code == 422
