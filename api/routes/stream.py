"""``GET /api/v1/events/stream``: live events as Server-Sent Events.

Events (``event:`` name, JSON ``data``):

- ``summary`` first on connect and then every ``WCS_MONITORING__REFRESH_S``: order
  counts per state, open alerts (code, title, severity, subject), devices;
- ``order``: ``order_id``, ``seq``, ``from``, ``to``, ``at`` of one state change
  (``seq`` lets a client drop a repeat);
- ``device``: ``id``, ``kind``, ``zone``, ``state``, ``detail``, ``at``;
- ``alert``: ``code``, ``severity``, ``title``, ``subject``, ``at``;
- ``kpis``: the 24-hour KPI report, every few summaries.

Access as for the status page (staff token by header or the page's cookie, or
public when configured). A client that falls too far behind is disconnected; the
browser's EventSource reconnects by itself and starts again from a summary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.live import Monitoring, to_json
from api.problems import problem
from api.routes.status import ViewerRejected, check_viewer, token_from

router = APIRouter(prefix="/api/v1", tags=["monitoring"])

PING_S = 15
SEND_TIMEOUT_S = 30
RETRY_MS = 2000


@router.get(
    "/events/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def event_stream(request: Request) -> Response:
    try:
        await check_viewer(request, token_from(request))
    except ViewerRejected as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.reason, headers=headers)
    runtime: Monitoring | None = getattr(request.app.state, "monitoring", None)
    if runtime is None:
        return problem(503, "live events are not running in this process", code="not-ready")
    # Subscribe before reading the snapshot: whatever happens in between is queued
    # and applied after it, never lost.
    sub = runtime.hub.subscribe()
    try:
        # The feed takes order states only while someone watches: the snapshot is
        # read once they flow.
        await runtime.feed.order_states_flowing()
        first = await runtime.refresher.summary(with_kpis=False)
    except BaseException:
        runtime.hub.unsubscribe(sub)
        raise

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(data=to_json(first), event="summary", retry=RETRY_MS)
            while True:
                event = await sub.next()
                if event is None:
                    return
                yield ServerSentEvent(data=event.encode(), event=event.kind)
        finally:
            runtime.hub.unsubscribe(sub)

    return EventSourceResponse(events(), ping=PING_S, send_timeout=SEND_TIMEOUT_S)
