"""Answering an HTTP request that asked the floor's owner to act.

The request row is applied by the controller instance that owns the station (see
``wcs.services.floor_requests``). The API waits a few seconds for it: applied, it
answers as a synchronous call would; refused, with the owner's reason as
problem+json; still pending, with 202 and the URL to follow it.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from wcs.errors import Conflict, NotFound, ValidationFailed, WcsError
from wcs.services.floor_requests import Answer

REQUESTS_PATH = "/api/v1/floor/requests"


class Refused(WcsError):
    code = "refused_by_owner"


def raise_refusal(answer: Answer) -> None:
    """A refused request as the error the owner met (404, 409 or 422)."""
    result = answer.result or {}
    detail = str(result.get("detail") or "the station refused the request")
    status = int(result.get("status") or 422)
    error: type[WcsError] = {404: NotFound, 409: Conflict}.get(status, ValidationFailed)
    raise error(detail)


def pending(answer: Answer) -> JSONResponse:
    href = f"{REQUESTS_PATH}/{answer.id}"
    return JSONResponse(
        status_code=202,
        content={
            "request_id": answer.id,
            "station": answer.station,
            "state": answer.state,
            "href": href,
        },
        headers={"Location": href},
    )


def view(answer: Answer) -> dict[str, Any]:
    return {
        "request_id": answer.id,
        "station": answer.station,
        "kind": answer.kind,
        "state": answer.state,
        "result": answer.result,
    }
