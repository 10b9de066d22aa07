"""Customer notifications: the dead-letter list, retries and language preferences.

Roles per endpoint are in each endpoint's description.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, require
from api.params import NotificationId
from api.routes.delivery_access import is_staff
from wcs.errors import ValidationFailed
from wcs.notify import store
from wcs.services.auth import Principal

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Desk = Annotated[Principal, Depends(require("supervisor", "customer_service"))]
PreferenceRole = Annotated[Principal, Depends(require("customer", "customer_service"))]
State = Literal["pending", "sending", "sent", "dead", "unconfirmed"]


class NotificationOut(BaseModel):
    id: int
    key: str
    order_id: str
    seq: int | None
    notice_id: int | None
    kind: str
    audience: str
    channel: str
    recipient: str | None
    lang: str
    subject: str | None
    message_id: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    lang: Literal["en", "zh-CN"]
    customer_ref: str | None = Field(
        default=None, max_length=64, description="staff only: whose preference"
    )


class PreferenceOut(BaseModel):
    customer_ref: str
    lang: str
    updated_at: datetime


def _wake(request: Request) -> None:
    notifier = getattr(request.app.state, "notifier", None)
    if notifier is not None:
        notifier.wake()


@router.get(
    "/notifications",
    response_model=list[NotificationOut],
    description=(
        "Roles: supervisor, customer_service. Notifications newest first; "
        "`state=dead` is the dead-letter list (undeliverable or out of attempts), "
        "`state=unconfirmed` those handed to the mail server by a notifier that stopped "
        "before it heard back. Repeat `state` for several."
    ),
)
async def list_notifications(
    engine: EngineDep,
    _: Desk,
    state: Annotated[list[State] | None, Query(max_length=10)] = None,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return await store.list_notifications(
        engine, states=state or (), order_id=order_id, limit=limit
    )


@router.get(
    "/notifications/{notification_id}",
    response_model=NotificationOut,
    description="Roles: supervisor, customer_service.",
)
async def read_notification(
    notification_id: NotificationId, engine: EngineDep, _: Desk
) -> dict[str, Any]:
    return await store.get_notification(engine, notification_id)


@router.post(
    "/notifications/{notification_id}/retry",
    response_model=NotificationOut,
    description=(
        "Roles: supervisor, customer_service. Send a dead or unconfirmed notification "
        "again with a fresh set of attempts (fix the address or the server first). An "
        "e-mail keeps its Message-ID, so a copy that did arrive is recognisable."
    ),
    responses={409: {"description": "not dead or unconfirmed, or it has no channel"}},
)
async def retry_notification(
    notification_id: NotificationId, engine: EngineDep, principal: Desk, request: Request
) -> dict[str, Any]:
    view = await store.retry(engine, notification_id, principal.name)
    _wake(request)
    return view


@router.post(
    "/notifications/{notification_id}/confirm-sent",
    response_model=NotificationOut,
    description=(
        "Roles: supervisor, customer_service. Record an unconfirmed e-mail as sent, after "
        "finding its Message-ID in the mail server's log."
    ),
    responses={409: {"description": "not unconfirmed"}},
)
async def confirm_notification(
    notification_id: NotificationId, engine: EngineDep, principal: Desk
) -> dict[str, Any]:
    return await store.confirm_sent(engine, notification_id, principal.name)


@router.put(
    "/notifications/preferences",
    response_model=PreferenceOut,
    description=(
        "Roles: customer (for themself), customer_service (for `customer_ref`). The "
        "language of future notifications: `en` or `zh-CN`. Without one, customers in "
        "mainland China and Singapore read Simplified Chinese, others English."
    ),
)
async def put_preference(
    body: PreferenceIn, engine: EngineDep, principal: PreferenceRole
) -> dict[str, Any]:
    if is_staff(principal):
        ref = body.customer_ref
        if not ref:
            raise ValidationFailed("say whose preference this is in 'customer_ref'")
    else:
        ref = principal.subject
        if not ref or (body.customer_ref and body.customer_ref != ref):
            raise ValidationFailed("customers set their own preference only")
    return await store.set_preference(engine, ref, body.lang, principal.name)
