"""Prometheus metrics, in a registry owned by one server instance (no process-global state, so tests can run
several servers or repositories in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
OTHER_MODEL = "_other"  # label for names no configured model has: clients must not create unbounded series


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "model_server_requests",
            "Requests by protocol, model, method and canonical status code.",
            ["protocol", "model", "method", "code"],
            registry=r,
        )
        self.request_errors = Counter(
            "model_server_request_errors",
            "Requests that ended with a non-OK status.",
            ["protocol", "model", "method", "code"],
            registry=r,
        )
        self.request_latency = Histogram(
            "model_server_request_latency_seconds",
            "Time from request received to response ready.",
            ["protocol", "model", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge("model_server_inflight_requests", "Requests being handled.", ["protocol"], registry=r)
        self.batch_size = Histogram(
            "model_server_batch_size",
            "Instances per model execution (before padding).",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_run_seconds = Histogram(
            "model_server_model_run_seconds",
            "Time of one model execution (one batch).",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_queue_depth = Gauge(
            "model_server_batch_queue_depth", "Requests waiting in the batching queues.", ["model"], registry=r
        )
        self.batch_queue_rejections = Counter(
            "model_server_batch_queue_rejections",
            "Requests refused because the batching queue was full.",
            ["model"],
            registry=r,
        )
        self.loaded_versions = Gauge(
            "model_server_loaded_versions", "Versions of a model that are AVAILABLE.", ["model"], registry=r
        )
        self.load_failures = Counter(
            "model_server_model_load_failures",
            "Versions that failed to load (skipped; older ones keep serving).",
            ["model"],
            registry=r,
        )
        self.load_seconds = Histogram(
            "model_server_model_load_seconds",
            "Load plus warm-up time of one version.",
            ["model"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.warmup_requests = Counter(
            "model_server_warmup_requests", "Warm-up requests run at load time.", ["model"], registry=r
        )
        self.request_log_dropped = Counter(
            "model_server_request_log_dropped",
            "Request-log records dropped because the writer fell behind.",
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
