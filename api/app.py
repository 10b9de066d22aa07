"""The FastAPI application factory: everything is built in the lifespan and injected."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from api import openapi, problems
from api.deps import TokenCache
from api.guards import RequestGuards
from api.live import run_monitoring
from api.metrics import INTAKE_BATCH
from api.routes import (
    aftersales,
    backorders,
    catalog,
    courier,
    customer,
    delivery,
    desk,
    docs,
    feedback,
    fleet,
    floor,
    health,
    inventory,
    monitoring,
    notifications,
    orders,
    self_service,
    service_desk,
    station,
    status,
    status_actions,
    stream,
)
from wcs.contract.topics import Topics
from wcs.floor import load_floor
from wcs.heap import settle
from wcs.notify.worker import Notifier
from wcs.persistence.db import make_engine
from wcs.persistence.outbox import OutboxRelay
from wcs.persistence.vacuum import Vacuuming
from wcs.services.delivery_jobs import DeliveryHousekeeping
from wcs.services.fleet_plans import FleetReplanner, PlanningConfig
from wcs.services.intake import IntakeDesk
from wcs.services.shipments import CarrierDesk
from wcs.settings import Settings

# Endpoints that take multipart uploads (their own size limit applies).
UPLOAD_PATHS: tuple[str, ...] = (
    r"/api/v1/shipments/[^/]+/pod",
    r"/courier/stops/[0-9]+/delivered",
    r"/station/[^/]+/qc/[^/]+",
)


def create_app(settings: Settings, *, run_relay: bool = True, settle_heap: bool = False) -> FastAPI:
    """``settle_heap``: once started, keep start-up's objects out of full garbage
    collections (``wcs.heap.settle``); for a worker process's own app only."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=20)
        app.state.engine = engine
        async with contextlib.AsyncExitStack() as stack:
            relay: OutboxRelay | None = None
            if run_relay:
                relay = await stack.enter_async_context(OutboxRelay(engine, settings.mqtt))
            app.state.relay = relay
            app.state.wake_relay = relay.wake if relay else (lambda: None)

            def committed(size: int) -> None:
                INTAKE_BATCH.observe(size)
                app.state.wake_relay()  # the batch's messages are in the outbox

            app.state.intake = await stack.enter_async_context(
                IntakeDesk(
                    engine,
                    app.state.topics,
                    batch_max=settings.intake.batch_max,
                    shortage=settings.intake.shortage,
                    on_committed=committed,
                )
            )
            await stack.enter_async_context(Vacuuming(engine, settings.vacuum))
            app.state.carrier_desk = await stack.enter_async_context(
                CarrierDesk.from_settings(settings)
            )
            await stack.enter_async_context(
                DeliveryHousekeeping(
                    engine,
                    app.state.topics,
                    auto_close_days=settings.auto_close_days,
                    desk=app.state.carrier_desk,
                    after_round=lambda: app.state.wake_relay(),
                )
            )
            app.state.fleet_replanner = await stack.enter_async_context(
                FleetReplanner(
                    engine,
                    PlanningConfig.from_settings(settings),
                    interval_s=settings.fleet.replan_interval_s,
                )
            )
            app.state.notifier = None
            if settings.notify.enabled:
                app.state.notifier = await stack.enter_async_context(Notifier(engine, settings))
            try:
                async with run_monitoring(app, settings, engine):
                    if settle_heap:
                        settle()
                    yield
            finally:
                await engine.dispose()

    app = FastAPI(
        title="wcs",
        version="1",
        summary="Warehouse control system API",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        # Served from local files by api.routes.docs (FastAPI's own use a CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.topics = Topics(settings.site)
    # The floor file, when given, lets POST /waves assign batches to pick stations.
    app.state.floor = load_floor(settings.floor_file) if settings.floor_file else None
    app.state.token_cache = TokenCache()
    app.state.relay = None
    app.state.wake_relay = lambda: None
    problems.install(app)
    openapi.install(app)
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(catalog.router)
    app.include_router(inventory.router)
    app.include_router(floor.router)
    app.include_router(delivery.router)
    app.include_router(fleet.router)
    app.include_router(courier.router)
    app.include_router(customer.router)
    app.include_router(service_desk.router)
    app.include_router(self_service.router)
    app.include_router(desk.router)
    app.include_router(aftersales.router)
    app.include_router(backorders.router)
    app.include_router(notifications.router)
    app.include_router(feedback.router)
    app.include_router(monitoring.router)
    app.include_router(stream.router)
    app.include_router(status.router)
    app.include_router(status_actions.router)
    app.include_router(station.router)
    app.include_router(docs.router)
    problems.answer_undeclared_methods(app)
    app.add_middleware(
        RequestGuards,
        max_json_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.pod_max_bytes + 64 * 1024,
        upload_paths=UPLOAD_PATHS,
    )
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker process builds its own app)."""
    from wcs.logs import configure_logging
    from wcs.settings import load_settings, secret_values

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json, secrets=secret_values(settings))
    return create_app(settings, settle_heap=True)


def openapi_document(settings: Settings) -> dict[str, Any]:
    return create_app(settings, run_relay=False).openapi()
