"""Retiring a controller instance for good: empty its MQTT session, then end it.

A controller's session outlives the process, so events left unacknowledged by a crash
come back when it returns under the same name. In a share group the broker goes on
giving a stopped member its share of new events until the session ends (Mosquitto
keeps such a session and queues for it), so an instance taken out of service must not
just stay away: its share would wait for it for ever. ``wcs controller --retire``
resumes the session without subscriptions (no new share comes), applies what the
session holds like any controller, and once nothing more has come for ``quiet_s`` and
all of it is committed and acknowledged, connects once with a clean start, which ends
the session and its place in the group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from controller.runtime import Controller
from wcs.errors import WcsError
from wcs.floor import Floor
from wcs.mqtt.client import make_client
from wcs.settings import Settings

log = logging.getLogger(__name__)


class RetireIncomplete(WcsError):
    """Events of the session were not all applied: the session is kept."""

    code = "retire_incomplete"


@dataclass(frozen=True)
class Retired:
    instance: str
    handled: int  # events taken from the session: applied, refused or dead-lettered


async def retire(settings: Settings, floor: Floor, *, quiet_s: float = 2.0) -> Retired:
    """Apply what ``settings.controller.instance``'s session holds, then end it."""
    instance = settings.controller.instance
    async with Controller(
        settings, floor, run_relay=False, housekeeping=False, retiring=True
    ) as controller:
        await controller.until_quiet(quiet_s)
        received = controller.stats.received
        drained = await controller.drain()
        if not drained or controller.stats.left_to_redeliver or not controller.idle():
            raise RetireIncomplete(
                f"controller {instance}: events still arriving or not yet committed; its "
                "session is kept with them. Run the retirement again."
            )
        identifier = controller.client_id()
    await end_session(settings, identifier)
    log.info("controller %s retired after handling %d queued events", instance, received)
    return Retired(instance, handled=received)


async def end_session(settings: Settings, identifier: str) -> None:
    """Connect once as ``identifier`` with a clean start: the broker drops the session
    (and with it the instance's subscriptions and share-group membership)."""
    protocol: Literal[3, 5] = 5 if settings.controller.shared_subscription else 3
    async with make_client(settings.mqtt, identifier=identifier, protocol=protocol):
        pass
