"""The app factory: `create_app(settings)` builds an independent app (tests build many).

The process model is one request at a time per worker process: handlers are `async def`
and call the (synchronous) services directly on the event loop. Ingest is CPU-bound
Python, so threads inside one process only contend for the interpreter lock; measured on
2 cores, handing each request to a thread pool cost 1 ms of latency per request and a
third of the batch throughput. Concurrency comes from `mdm serve --workers N`: the workers
share one listening socket and an idle worker takes the next connection.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import openapi, problems
from api.deps import known_query
from api.metrics import Metrics, Timing
from api.middleware import RequestGuard
from api.ratelimit import TokenBuckets
from api.routes import (
    audit,
    consents,
    health,
    persons,
    records,
    rejections,
    reviews,
    sources,
    webhooks,
)
from api.ui import routes as ui
from mdm import __version__
from mdm.config import Settings, get_settings
from mdm.services.context import Registry

# A request's objects die with it, nearly all of them by reference counting: the collector
# is there for the few cycles. At its default young threshold of 700 allocations it ran
# every third record of a batch, its older generations after it, scanning a working set
# that was about to be freed anyway: 70-110 ms of every 1,000 records at a million persons
# (in process, 16-20% of the ingest's CPU; the served batch bench's workers, 5-12%). Every
# 50,000 it runs about once per batch, and a cycle lives at most that many allocations longer.
REQUEST_COLLECTOR = (50_000, 20, 100)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    settings = settings or get_settings()
    owned = registry is None
    registry = registry or Registry.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What the process loaded to start (modules, the nickname and phone tables, CLDR
        # data, the match model) lives as long as it does: out of the collector's sight,
        # a full collection scans only what requests made, not the whole heap (pauses of
        # 100 ms and more were measured on each worker under load).
        if not gc.get_freeze_count():
            gc.collect()  # nothing unreachable is frozen with the rest
            gc.freeze()
            gc.set_threshold(*REQUEST_COLLECTOR)
        yield
        if owned:
            registry.close()

    app = FastAPI(
        title="mdm",
        version=__version__,
        summary="The canonical person registry: one Person GUID per human across CRM, ATS, HRIS.",
        lifespan=lifespan,
        dependencies=[Depends(known_query)],
    )
    app.state.registry = registry
    app.state.metrics = metrics = Metrics(registry)
    app.state.rate_limits = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
    problems.install(app)
    openapi.install(app)
    for module in (
        records,
        persons,
        consents,
        reviews,
        sources,
        rejections,
        webhooks,
        audit,
        health,
    ):
        app.include_router(module.router)
    ui.install(app)
    app.add_middleware(Timing, metrics=metrics)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    return app
