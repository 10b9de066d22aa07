"""The courier page over plain HTTP (no browser): sign-in, language, forms without
JavaScript, the request-forgery guard, and what the actions do to orders."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.routes.courier import csrf_token
from tests.integration.api.conftest import ADMIN, Served
from tests.integration.delivery.helpers import Tokens, auth, image_bytes
from tests.integration.fleet.conftest import (
    courier_body,
    own_fleet_parcels,
    plan,
    put_couriers,
    today,
)
from wcs.persistence.tables import customer_notices


@contextlib.asynccontextmanager
async def signed_in(api: Served, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A phone that opened the sign-in link once: from then on the cookie is the key."""
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30, headers=BROWSER) as client:
        hop = await client.get("/courier", params={"token": token})
        assert hop.status_code == 303 and hop.headers["location"] == "/courier"
        cookie = hop.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert "Path=/courier" in cookie
        yield client


BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{32})"', html)
    assert found is not None, "no form token on the page"
    return found.group(1)


def _stop_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="stop [^"]*" id="stop-(\d+)"', html)]


async def _state(admin: httpx.AsyncClient, order_id: str) -> str:
    return str((await admin.get(f"/api/v1/orders/{order_id}")).json()["state"])


async def route_day(
    admin: httpx.AsyncClient, engine: AsyncEngine, site: str, tokens: Tokens
) -> list[dict[str, Any]]:
    """Three parcels planned for courier-1 today and handed over at the dock."""
    shipments = await own_fleet_parcels(admin, engine, site, tokens, 3)
    await put_couriers(admin, tokens, {"courier-1": courier_body(name="Kim Weber")})
    day = await plan(admin, tokens)
    [route] = day["routes"]
    for shipment in shipments:
        r = await admin.post(
            f"/api/v1/shipments/{shipment['id']}/handover", headers=auth(tokens.dispatcher)
        )
        assert r.status_code == 200, r.text
    stops: list[dict[str, Any]] = route["stops"]
    return stops


async def test_sign_in_language_and_refusals(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, headers=BROWSER) as anon:
        page = await anon.get("/courier")
        assert page.status_code == 401 and "/courier?token=" in page.text
        # A client that is no browser gets the API's problem details instead.
        tool = await anon.get("/courier", headers={"Accept": "application/json"})
        assert tool.status_code == 401
        assert tool.headers["content-type"] == "application/problem+json"
        bad = await anon.get("/courier", params={"token": "wcs_nope"})
        assert bad.status_code == 401 and "unknown or revoked" in bad.text
        staff = await anon.get("/courier", params={"token": tokens.dispatcher})
        assert staff.status_code == 403 and "not a courier token" in staff.text
        # The admin token holds the courier role but names no courier.
        assert (await anon.get("/courier", params={"token": ADMIN})).status_code == 403
        zh = await anon.get("/courier", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert "快递员登录" in zh.text and '<html lang="zh-CN">' in zh.text

    async with signed_in(api, tokens.courier) as courier:
        empty = await courier.get("/courier")
        assert empty.status_code == 200 and 'id="no-route"' in empty.text
        csp = empty.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "form-action 'self'" in csp
        refs = re.findall(r'(?<![\w-])(?:src|href)="([^"]*)"', empty.text)
        assert refs and all(r.startswith(("/", "#", "data:")) for r in refs), refs

        # The switch: remembered in a cookie, ahead of the browser's preference.
        switch = await courier.get("/courier", params={"lang": "zh-CN"})
        assert switch.status_code == 303 and "wcs_lang=zh-CN" in switch.headers["set-cookie"]
        page = await courier.get("/courier", headers={"Accept-Language": "en"})
        assert '<html lang="zh-CN">' in page.text and "今天没有你的路线" in page.text
        await courier.get("/courier", params={"lang": "en"})
        assert "No route for you today" in (await courier.get("/courier")).text

        for name in ("courier.js", "courier.css"):
            asset = await courier.get(f"/courier/static/{name}")
            assert asset.status_code == 200 and "http" not in asset.text
        assert (await courier.get("/courier/static/app.py")).status_code == 404


async def test_forms_deliver_and_fail_without_javascript(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, signed_in(api, tokens.courier) as courier:
        stops = await route_day(admin, engine, site, tokens)
        html = (await courier.get("/courier")).text
        assert _stop_ids(html) == [s["id"] for s in stops]  # driving order
        first, second, third = stops
        to = first["deliver_to"]
        assert f'href="geo:{first["lat"]:.6f},{first["lon"]:.6f}?q=' in html
        assert 'href="tel:+49301234567"' in html  # the customer's phone, dialable
        assert to["line1"] in html
        token = _csrf(html)

        # A form without its token (another site's forgery) changes nothing.
        forged = await courier.post(
            f"/courier/stops/{first['id']}/failed", data={"reason": "not_home"}
        )
        assert forged.status_code == 403
        foreign = await courier.post(
            f"/courier/stops/{first['id']}/failed",
            data={"reason": "not_home", "csrf": token},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        assert await _state(admin, first["order_id"]) == "shipped"

        # Start: the route is locked and the parcels go out for delivery.
        route_id = re.search(r'name="route_id" value="([^"]+)"', html)
        assert route_id is not None
        started = await courier.post(
            "/courier/start", data={"csrf": token, "route_id": route_id.group(1)}
        )
        assert started.status_code == 303 and started.headers["location"] == "/courier?ok=started"
        for stop in stops:
            assert await _state(admin, stop["order_id"]) == "out_for_delivery"
        routes = (await admin.get("/api/v1/fleet/routes", headers=auth(tokens.dispatcher))).json()
        assert routes["routes"][0]["locked"] and routes["routes"][0]["started_at"]

        # Delivered: photo and receiver, the proof of delivery.
        photo = image_bytes("JPEG", seed=5)
        done = await courier.post(
            f"/courier/stops/{first['id']}/delivered",
            data={"csrf": token, "receiver_name": "Neighbour Jensen", "seq": "1"},
            files={"photo": ("door.jpg", photo, "image/jpeg")},
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/courier?ok=delivered&stop=1#stop-{first['id']}"
        assert await _state(admin, first["order_id"]) == "delivered"
        pod = await admin.get(f"/api/v1/shipments/{first['shipment_id']}/pod")
        assert pod.json()["receiver_name"] == "Neighbour Jensen"
        assert pod.json()["photo"]["bytes"] == len(photo)

        # A text file is no photo.
        refused = await courier.post(
            f"/courier/stops/{second['id']}/delivered",
            data={"csrf": token, "receiver_name": "X"},
            files={"photo": ("door.jpg", b"%PDF-1.4 not an image", "image/jpeg")},
        )
        assert refused.status_code == 415 and 'id="error"' in refused.text
        assert await _state(admin, second["order_id"]) == "out_for_delivery"

        # Failed attempt with a reason: delivery_failed, a notice for the customer.
        failed = await courier.post(
            f"/courier/stops/{second['id']}/failed",
            data={"csrf": token, "reason": "not_home", "detail": "card left", "seq": "2"},
        )
        assert failed.status_code == 303
        assert await _state(admin, second["order_id"]) == "delivery_failed"
        async with engine.connect() as conn:
            kinds = (
                await conn.scalars(
                    select(customer_notices.c.kind).where(
                        customer_notices.c.order_id == second["order_id"]
                    )
                )
            ).all()
        assert "delivery_failed" in kinds
        again = await courier.post(
            f"/courier/stops/{second['id']}/delivered",
            data={"csrf": token, "receiver_name": "X"},
            files={"photo": ("door.jpg", photo, "image/jpeg")},
        )
        assert again.status_code == 409

        page = (await courier.get("/courier", params={"ok": "failed", "stop": 2})).text
        assert 'class="stop done-delivered"' in page and 'class="stop done-failed"' in page
        assert "nobody home: card left" in page
        assert "2 of 3 done" in page

        # Another courier cannot touch this route's stops.
        async with signed_in(api, tokens.other_courier) as other:
            # (a valid form token of their own: it is the stop that is not theirs)
            r = await other.post(
                f"/courier/stops/{third['id']}/failed",
                data={"csrf": csrf_token(tokens.other_courier), "reason": "refused"},
            )
            assert r.status_code == 404
        assert await _state(admin, third["order_id"]) == "out_for_delivery"

        # The failed parcel comes again on tomorrow's plan, the delivered one does not.
        tomorrow = await plan(admin, tokens, today() + timedelta(days=1))
        planned = {s["shipment_id"] for r in tomorrow["routes"] for s in r["stops"]}
        assert second["shipment_id"] in planned
        assert first["shipment_id"] not in planned
        assert third["shipment_id"] not in planned  # still on today's route
