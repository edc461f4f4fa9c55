"""Prometheus metrics, in a registry owned by one server instance (no process-global state, so tests can run
several servers or repositories in one process).

Beside our own ``model_server_*`` series, the page carries TF Serving's two request series, derived from ours at
scrape time, so dashboards and alerts written for ``tensorflow_model_server`` keep working:
``:tensorflow:serving:request_count{model_name,status}`` and ``:tensorflow:serving:request_latency{model_name,API,
entrypoint}`` (microseconds), for Predict / Classify / Regress / MultiInference over REST and gRPC. Unlike TF
Serving's, the latency histogram also counts failed requests, and its buckets are ours (in microseconds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
OTHER_MODEL = "_other"  # label for names no configured model has: clients must not create unbounded series
TF_SERVING_APIS = {
    "predict": "Predict",
    "classify": "Classify",
    "regress": "Regress",
    "multiinference": "MultiInference",
}
TF_SERVING_ENTRYPOINTS = {"rest": "REST", "grpc": "GRPC"}
TF_REQUEST_COUNT = ":tensorflow:serving:request_count"  # TF Serving's /tensorflow/serving/request_count
TF_REQUEST_LATENCY = ":tensorflow:serving:request_latency"


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
        self.signature_engine = Gauge(
            "model_server_signature_engine",
            "1 per available version and signature, labelled with the engine that answers it (tensorflow, "
            "onnxruntime, onnxruntime_int8).",
            ["model", "version", "signature", "engine"],
            registry=r,
        )
        self.engine_max_rows = Gauge(
            "model_server_engine_max_batch_rows",
            "Most rows a call may have to run on the signature's engine (0: any); larger calls run on TensorFlow.",
            ["model", "version", "signature"],
            registry=r,
        )
        self._engine_series: dict[str, list[tuple[str, str, str, str]]] = {}
        self.request_log_dropped = Counter(
            "model_server_request_log_dropped",
            "Request-log records dropped because the writer fell behind.",
            registry=r,
        )

    def set_engines(self, model: str, routes: Mapping[int, Mapping[str, tuple[str, int]]]) -> None:
        """Replace ``model``'s engine series by those of its available versions (``ServableModel.engine_routes``)."""
        for labels in self._engine_series.pop(model, []):
            self.signature_engine.remove(*labels)
            self.engine_max_rows.remove(*labels[:3])
        series = []
        for version, signatures in routes.items():
            for signature, (engine, max_rows) in signatures.items():
                labels = (model, str(version), signature, engine)
                self.signature_engine.labels(*labels).set(1)
                self.engine_max_rows.labels(*labels[:3]).set(max_rows)
                series.append(labels)
        if series:
            self._engine_series[model] = series

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry) + self.tf_serving_text().encode("utf-8"), CONTENT_TYPE_LATEST

    def tf_serving_text(self) -> str:
        """TF Serving's request count and latency series, in its exporter's format (see the module docstring)."""
        counts: dict[tuple[str, str], float] = defaultdict(float)
        for family in self.requests.collect():
            for s in family.samples:
                if s.name.endswith("_total") and _tf_api(s.labels) is not None:
                    counts[(s.labels["model"], s.labels["code"])] += s.value
        buckets: dict[tuple[str, str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        sums: dict[tuple[str, str, str], float] = defaultdict(float)
        for family in self.request_latency.collect():
            for s in family.samples:
                api = _tf_api(s.labels)
                if api is None:
                    continue
                key = (s.labels["model"], api, TF_SERVING_ENTRYPOINTS[s.labels["protocol"]])
                if s.name.endswith("_bucket"):
                    buckets[key][float(s.labels["le"])] += s.value
                elif s.name.endswith("_sum"):
                    sums[key] += s.value
        lines = [f"# TYPE {TF_REQUEST_COUNT} counter"]
        for (model, status), value in sorted(counts.items()):
            lines.append(f'{TF_REQUEST_COUNT}{{model_name="{_escape(model)}",status="{status}"}} {value:.0f}')
        lines.append(f"# TYPE {TF_REQUEST_LATENCY} histogram")
        for (model, api, entrypoint), cumulative in sorted(buckets.items()):
            labels = f'model_name="{_escape(model)}",API="{api}",entrypoint="{entrypoint}"'
            for le, value in sorted(cumulative.items()):
                bound = "+Inf" if le == float("inf") else f"{le * 1e6:g}"
                lines.append(f'{TF_REQUEST_LATENCY}_bucket{{{labels},le="{bound}"}} {value:.0f}')
            lines.append(f"{TF_REQUEST_LATENCY}_sum{{{labels}}} {sums[(model, api, entrypoint)] * 1e6:.0f}")
            lines.append(f"{TF_REQUEST_LATENCY}_count{{{labels}}} {cumulative[float('inf')]:.0f}")
        return "\n".join(lines) + "\n"


def _tf_api(labels: dict[str, str]) -> str | None:
    """TF Serving's API name for one of its prediction calls over REST or gRPC; None for anything else."""
    if labels.get("protocol") not in TF_SERVING_ENTRYPOINTS:
        return None
    return TF_SERVING_APIS.get(labels.get("method", ""))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
