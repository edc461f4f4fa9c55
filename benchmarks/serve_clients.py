"""The serving benchmark's load: a closed loop of client threads, and one call factory per protocol.

Each factory returns ``make()``; every client thread calls it once for its own connection, then calls the result
with a request number. The in-process factory calls the model layer directly (the server's upper bound).
`wrk_post` is the low-CPU load generator for REST at high concurrency.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model_server.model import ServableModel

SIGNATURE = "serving_default"  # the pipeline's serving contract (pipeline_modules/features.py)
TEXT_INPUT = "text"


# --- measurement -----------------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)


def closed_loop(
    make_call: Callable[[], Callable[[int], int]], concurrency: int, duration: float, max_requests: int, warmup: int = 3
) -> dict:
    """``concurrency`` threads, each with its own client, send requests back to back until the time or count
    budget is spent. A call returns how many instances it scored. Latencies of failed calls are not counted."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    instances = [0] * concurrency
    errors: list[str] = []
    warm = threading.Barrier(concurrency + 1)
    go = threading.Event()
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        call = make_call()
        try:
            for j in range(warmup):
                call(i + j * concurrency)
        except Exception as exc:  # noqa: BLE001 - reported with the phase
            errors.append("warm-up: " + repr(exc)[:200])
        warm.wait()
        go.wait()
        end = window["end"]
        while time.perf_counter() < end:
            n = next(counter)
            if n >= max_requests:
                break
            start = time.perf_counter()
            try:
                instances[i] += call(n)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors.append(repr(exc)[:200])
                continue
            latencies[i].append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    warm.wait()  # every client is connected and warm
    begin = time.perf_counter()
    window["end"] = begin + duration
    go.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    flat = [x for per in latencies for x in per]
    return {
        "concurrency": concurrency,
        "requests": len(flat),
        "instances": sum(instances),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(flat) / elapsed, 2),
        "instances_per_s": round(sum(instances) / elapsed, 2),
        "p50_ms": _ms(_percentile(flat, 0.50)),
        "p95_ms": _ms(_percentile(flat, 0.95)),
        "p99_ms": _ms(_percentile(flat, 0.99)),
        "mean_ms": round(statistics.fmean(flat) * 1000, 3) if flat else None,
    }


# --- clients ---------------------------------------------------------------------------------------------------------


def _rest_post_factory(url: str, path: str, bodies: Sequence[bytes]) -> Callable[[], Callable[[int], int]]:
    """POSTs the bodies in turn on one kept-alive connection per client thread; any non-200 answer stops the run."""
    from model_server.client import RestClient

    def make() -> Callable[[int], int]:
        client = RestClient(url, timeout=120)

        def call(n: int) -> int:
            status, _, data = client.request("POST", path, bodies[n % len(bodies)])
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {data[:100]!r}")
            return 1

        return call

    return make


def rest_call_factory(url: str, model: str, texts: Sequence[str]) -> Callable[[], Callable[[int], int]]:
    bodies = [json.dumps({"instances": [s]}).encode() for s in texts]
    return _rest_post_factory(url, f"/v1/models/{model}:predict", bodies)


def grpc_call_factory(target: str, model: str, texts: Sequence[str]) -> Callable[[], Callable[[int], int]]:
    from model_server.client import GrpcClient

    def make() -> Callable[[int], int]:
        client = GrpcClient(target, timeout=120)
        requests = [client.predict_request(model, {TEXT_INPUT: [s.encode()]}, SIGNATURE) for s in texts]

        def call(n: int) -> int:
            client.prediction.Predict(requests[n % len(requests)], timeout=120)
            return 1

        return call

    return make


def v2_rest_call_factory(url: str, model: str, texts: Sequence[str]) -> Callable[[], Callable[[int], int]]:
    """The Open Inference Protocol over REST: one BYTES input in JSON, as a plain-HTTP V2 client sends it."""
    bodies = [
        json.dumps({"inputs": [{"name": TEXT_INPUT, "datatype": "BYTES", "shape": [1], "data": [s]}]}).encode()
        for s in texts
    ]
    return _rest_post_factory(url, f"/v2/models/{model}/infer", bodies)


def v2_grpc_call_factory(target: str, model: str, texts: Sequence[str]) -> Callable[[], Callable[[int], int]]:
    """``inference.GRPCInferenceService/ModelInfer`` with raw BYTES contents, as Triton clients send them."""
    import struct

    import grpc

    from model_server import v2_proto

    request_cls = v2_proto.message_class("ModelInferRequest")
    response_cls = v2_proto.message_class("ModelInferResponse")

    def request(text: str) -> bytes:
        message = request_cls(model_name=model)
        message.inputs.add(name=TEXT_INPUT, datatype="BYTES", shape=[1])
        data = text.encode()
        message.raw_input_contents.append(struct.pack("<I", len(data)) + data)
        return bytes(message.SerializeToString())

    requests = [request(s) for s in texts]

    def make() -> Callable[[int], int]:
        channel = grpc.insecure_channel(target)
        infer = channel.unary_unary(
            f"/{v2_proto.SERVICE}/ModelInfer", request_serializer=None, response_deserializer=response_cls.FromString
        )

        def call(n: int) -> int:
            infer(requests[n % len(requests)], timeout=120)
            return 1

        return call

    return make


CALL_FACTORIES = {
    "rest": rest_call_factory,
    "grpc": grpc_call_factory,
    "v2_rest": v2_rest_call_factory,
    "v2_grpc": v2_grpc_call_factory,
}


def in_process_factory(model: ServableModel, texts: Sequence[str], batch: int) -> Callable[[], Callable[[int], int]]:
    import numpy as np

    def make() -> Callable[[int], int]:
        inputs = []
        for k in range(len(texts)):
            arr = np.empty(batch, dtype=object)
            arr[:] = [texts[(k + j) % len(texts)].encode() for j in range(batch)]
            inputs.append({TEXT_INPUT: arr})

        def call(n: int) -> int:
            model.predict(SIGNATURE, inputs[n % len(inputs)])
            return batch

        return call

    return make


def wrk_post(url: str, model: str, seconds: int, sentence: str, workdir: Path, connections: int = 32) -> dict[str, Any]:
    """REST throughput from `wrk` (one thread: a load generator that costs little CPU, so the figure is the server's),
    `connections` keep-alive connections each posting one sentence per request (a Lua script)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"measured": False, "reason": "wrk is not installed (apt-get install -y wrk)"}
    script = workdir / "post.lua"
    body = json.dumps({"instances": [sentence]}).replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(f"wrk.method = 'POST'\nwrk.body = '{body}'\nwrk.headers['Content-Type'] = 'application/json'\n")
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"{url}/v1/models/{model}:predict",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 60)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", proc.stdout)
    errors = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", proc.stdout)
    p50 = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s)\b", proc.stdout, re.M)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {
        "measured": bool(rate) and proc.returncode == 0,
        "examples_per_s": float(rate.group(1)) if rate else None,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "seconds": seconds,
        "command": " ".join(cmd[:-3] + ["post.lua", cmd[-1]]),
        "output_tail": proc.stdout[-600:] + proc.stderr[-300:],
    }
