"""GET /metrics: Prometheus text format (prometheus_client), for the operator's scraper only.

Served only when `metrics_token` is set, and only to a request carrying it
(`Authorization: Bearer <metrics_token>`); otherwise 404, as if there were no such page. The
figures say how busy the service is and how far the notary lags, which is no one else's business.

Per process (each gunicorn worker answers for itself; a scraper sums them): request latency by
route, exports in progress. From the database at each scrape (the same from every process):
queue depth by state, publish outcomes by platform, the notary's lag.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ghostpost.bootstrap import Container
from ghostpost.services.metrics import PUBLISH_OUTCOMES, operational_snapshot

_EXTENSION = "ghostpost.metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metrics:
    """One app's registry and the metrics its requests update."""

    registry: CollectorRegistry
    request_seconds: Histogram
    exports_in_progress: Gauge


class DatabaseCollector(Collector):
    """Reads the queue, publish outcomes and notary lag at each scrape."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def collect(self) -> Iterator[Metric]:
        """Yield the figures of one read-only unit of work."""
        snapshot = operational_snapshot(self._container.services)
        depth = GaugeMetricFamily(
            "ghostpost_queue_posts", "Posts by state (all accounts).", labels=["state"]
        )
        for state, count in sorted(snapshot.queue_depth().items()):
            depth.add_metric([state], count)
        yield depth
        outcomes = GaugeMetricFamily(
            "ghostpost_publish_outcomes_posts",
            "Posts published or failed, by platform (a retried failure leaves `failed`).",
            labels=["platform", "outcome"],
        )
        platforms = sorted({platform for platform, _ in snapshot.posts})
        for platform in platforms:
            for state in PUBLISH_OUTCOMES:
                outcomes.add_metric(
                    [platform, state.value], snapshot.posts.get((platform, state.value), 0)
                )
        yield outcomes
        yield GaugeMetricFamily(
            "ghostpost_ledger_entries", "Entries in the ledger.", value=snapshot.ledger_entries
        )
        yield GaugeMetricFamily(
            "ghostpost_notary_unsigned_entries",
            "Ledger entries no signed head covers yet.",
            value=snapshot.ledger_entries - snapshot.signed_entries,
        )
        if snapshot.seconds_since_signature is not None:
            yield GaugeMetricFamily(
                "ghostpost_notary_seconds_since_signature",
                "Seconds since the notary signed the newest head.",
                value=snapshot.seconds_since_signature,
            )


def metrics_of(app: Flask) -> Metrics:
    """Return the app's metrics (init_app made them)."""
    found: Metrics = app.extensions[_EXTENSION]
    return found


def init_app(app: Flask, container: Container) -> None:
    """Time every request and serve GET /metrics (see the module docstring)."""
    # A registry per app: tests build many apps in one process, and none sees another's figures.
    registry = CollectorRegistry()
    metrics = Metrics(
        registry,
        Histogram(
            "ghostpost_request_duration_seconds",
            "Time to answer a request, by route (the URL rule, not the URL) and method.",
            ["route", "method"],
            registry=registry,
        ),
        Gauge(
            "ghostpost_exports_in_progress",
            "Export downloads being streamed by this process.",
            registry=registry,
        ),
    )
    registry.register(DatabaseCollector(container))
    app.extensions[_EXTENSION] = metrics

    @app.before_request
    def _start_timer() -> None:
        # A duration, not a time of day: the monotonic counter, not the injected Clock.
        g.metrics_started = time.perf_counter()

    @app.teardown_request
    def _observe(_exc: BaseException | None) -> None:
        started = g.pop("metrics_started", None)
        if started is None:
            return
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        metrics.request_seconds.labels(route, request.method).observe(time.perf_counter() - started)

    app.add_url_rule("/metrics", "metrics", _serve_metrics, methods=["GET"])


def _serve_metrics() -> Response:
    token = current_app.extensions["ghostpost"].settings.metrics_token
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(404)
    body = generate_latest(metrics_of(current_app._get_current_object()).registry)  # type: ignore[attr-defined]
    response = Response(body, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
