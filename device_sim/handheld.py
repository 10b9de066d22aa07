"""What floor staff see and do on a handheld terminal: the system's REST API over HTTP.

People in a simulated shift use it where real staff look at a screen (which order a
lit slot belongs to, whether QC passed) or key something in (a QC verdict, a goods
receipt). Everything physical still goes through the devices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from types import TracebackType
from typing import Any, Self

import httpx


class HandheldError(RuntimeError):
    """The API refused a request, or an expected state did not come in time."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal


class Handheld:
    """``async with Handheld(base_url, token) as hh: await hh.tasks("PK1")``."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            # Many people share one client: enough connections that nobody queues. An
            # idle connection is dropped well before the server's keep-alive timeout
            # (uvicorn: 5 s, httpx's own default too): reusing one the server is
            # closing at that moment fails with "Server disconnected".
            limits=httpx.Limits(
                max_connections=32, max_keepalive_connections=32, keepalive_expiry=2.0
            ),
        )
        self.requests = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, *, ok: Collection[int] = (200, 201), **kw: Any
    ) -> Any:
        self.requests += 1
        response = await self._client.request(method, path, **kw)
        if response.status_code not in ok:
            raise HandheldError(
                f"{method} {path} answered {response.status_code}: {response.text[:300]}",
                response.status_code,
            )
        return response.json()

    # -- reading -------------------------------------------------------------------

    async def tasks(
        self, station: str | None = None, states: Collection[str] = (), order_id: str | None = None
    ) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("limit", 2000)]
        if station:
            params.append(("station", station))
        if order_id:
            params.append(("order_id", order_id))
        params += [("state", s) for s in states]
        result: list[dict[str, Any]] = await self.request("GET", "/api/v1/tasks", params=params)
        return result

    async def order(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/api/v1/orders/{order_id}")
        return result

    async def orders(self, state: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"state": state, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = await self.request("GET", "/api/v1/orders", params=params)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def inventory(self, sku: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/api/v1/inventory/{sku}")
        return result

    async def counts(
        self, states: Collection[str] = (), *, station: str | None = None
    ) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("limit", 2000), *(("state", s) for s in states)]
        if station:
            params.append(("station", station))
        result: list[dict[str, Any]] = await self.request("GET", "/api/v1/counts", params=params)
        return result

    async def moves(
        self, states: Collection[str] = (), *, station: str | None = None
    ) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("limit", 2000), *(("state", s) for s in states)]
        if station:
            params.append(("station", station))
        result: list[dict[str, Any]] = await self.request("GET", "/api/v1/moves", params=params)
        return result

    async def wait_order(
        self,
        order_id: str,
        states: Collection[str] = (),
        *,
        leaving: Collection[str] = (),
        timeout_s: float = 30.0,
        poll_s: float = 0.05,
    ) -> str:
        """Poll until the order is in one of ``states`` (or out of all of ``leaving``)."""
        if bool(states) == bool(leaving):
            raise ValueError("give either the states to wait for or the states to leave")
        state = "?"
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    state = str((await self.order(order_id))["state"])
                    if (states and state in states) or (leaving and state not in leaving):
                        return state
                    await asyncio.sleep(poll_s)
        except TimeoutError:
            wanted = f"one of {sorted(states)}" if states else f"none of {sorted(leaving)}"
            raise HandheldError(
                f"order {order_id} stayed '{state}' for {timeout_s:g} s; expected {wanted}"
            ) from None

    # -- keying in -----------------------------------------------------------------

    async def receipt(self, sku: str, location: str, qty: int) -> dict[str, Any]:
        body = {"sku": sku, "location": location, "qty": qty}
        result: dict[str, Any] = await self.request("POST", "/api/v1/inventory/receipts", json=body)
        return result

    async def count_result(self, count_id: int, qty: int) -> dict[str, Any]:
        """Key what a count found; the answer once the station has applied it."""
        result: dict[str, Any] = await self._floor(
            f"/api/v1/counts/{count_id}/result", {"qty": qty}
        )
        return result

    async def count_accept(self, count_id: int, qty: int) -> dict[str, Any]:
        """A supervisor books ``qty`` counted now."""
        result: dict[str, Any] = await self._floor(
            f"/api/v1/counts/{count_id}/accept", {"qty": qty}
        )
        return result

    async def _floor(self, path: str, body: dict[str, Any], timeout_s: float = 30.0) -> Any:
        """A request the owning station applies: its answer, waiting past a 202."""
        answer = await self.request("POST", path, json=body, ok=(200, 201, 202))
        if "request_id" not in answer or answer.get("state") != "pending":
            return answer
        async with asyncio.timeout(timeout_s):
            while True:
                await asyncio.sleep(0.05)
                view = await self.request("GET", answer["href"])
                if view["state"] == "done":
                    return view["result"]
                if view["state"] == "refused":
                    status = (view.get("result") or {}).get("status")
                    raise HandheldError(f"POST {path} refused: {view['result']}", status)

    async def qc_result(
        self, order_id: str, *, packaging_ok: bool, appearance_ok: bool, note: str | None
    ) -> str:
        body = {"packaging_ok": packaging_ok, "appearance_ok": appearance_ok, "note": note}
        result = await self.request("POST", f"/api/v1/qc/{order_id}/result", json=body)
        return str(result["qc"])

    async def qc_resolve(self, order_id: str, action: str) -> str:
        result = await self.request(
            "POST", f"/api/v1/qc/{order_id}/resolve", json={"action": action}
        )
        return str(result["state"])
