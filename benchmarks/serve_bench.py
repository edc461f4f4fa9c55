"""Serving benchmark: latency at concurrency 1 and throughput at concurrency 32, over REST and gRPC, with batching on
and off, against the same model called in-process (the limit the server approaches).

    python benchmarks/serve_bench.py                                  # the toy model, built on the fly
    python benchmarks/serve_bench.py --model_base_path serving_model/sentiment --duration 20

Every request carries one sentence (the "one-sentence latency" of the serving target). The in-process reference
runs the model layer directly: single sentences one after another (latency), and batches of ``--concurrency``
sentences (throughput). Loops are bounded by ``--duration`` and ``--max_requests`` and only talk to 127.0.0.1.
Client and server share this machine's cores, so server figures include the client's CPU cost. Prints a table and
writes ``benchmarks/results/serve.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SENTENCES = [
    "A wonderful film with a great cast.",
    "The plot was boring and the acting was awful.",
    "I loved every minute of it.",
    "Not the worst movie I have seen, but close.",
    "An excellent, moving story that stays with you.",
    "Dull, predictable and far too long.",
    "The soundtrack is brilliant and the photography superb.",
    "I wanted to like it, but it was a waste of time.",
]


# --- measurement -----------------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def closed_loop(
    make_call: Callable[[], Callable[[int], int]], concurrency: int, duration: float, max_requests: int, warmup: int = 5
) -> dict:
    """``concurrency`` threads, each with its own client, send requests back to back until the time or count
    budget is spent. A call returns how many instances it scored."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    instances = [0] * concurrency
    errors: list[str] = []
    warm = threading.Barrier(concurrency + 1)
    go = threading.Event()
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        call = make_call()
        for j in range(warmup):
            call(j)
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
        "requests": len(flat),
        "instances": sum(instances),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(flat) / elapsed, 1),
        "instances_per_s": round(sum(instances) / elapsed, 1),
        "p50_ms": round(_percentile(flat, 0.50) * 1000, 3),
        "p99_ms": round(_percentile(flat, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(flat) * 1000, 3) if flat else None,
    }


# --- clients ---------------------------------------------------------------------------------------------------------


def rest_call_factory(url: str, model: str) -> Callable[[], Callable[[int], int]]:
    from model_server.client import RestClient

    bodies = [json.dumps({"instances": [s]}).encode() for s in SENTENCES]
    path = f"/v1/models/{model}:predict"

    def make() -> Callable[[int], int]:
        client = RestClient(url, timeout=60)

        def call(n: int) -> int:
            status, _, data = client.request("POST", path, bodies[n % len(bodies)])
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {data[:100]!r}")
            return 1

        return call

    return make


def grpc_call_factory(target: str, model: str) -> Callable[[], Callable[[int], int]]:
    from model_server.client import GrpcClient

    def make() -> Callable[[int], int]:
        client = GrpcClient(target, timeout=60)
        requests = [client.predict_request(model, {"text": [s.encode()]}) for s in SENTENCES]

        def call(n: int) -> int:
            client.prediction.Predict(requests[n % len(requests)], timeout=60)
            return 1

        return call

    return make


def in_process_factory(model, batch: int) -> Callable[[], Callable[[int], int]]:
    import numpy as np

    def make() -> Callable[[int], int]:
        inputs = []
        for k in range(len(SENTENCES)):
            arr = np.empty(batch, dtype=object)
            arr[:] = [SENTENCES[(k + j) % len(SENTENCES)].encode() for j in range(batch)]
            inputs.append({"text": arr})

        def call(n: int) -> int:
            model.predict("serving_default", inputs[n % len(inputs)])
            return batch

        return call

    return make


# --- the run ---------------------------------------------------------------------------------------------------------


def machine() -> dict:
    import aiohttp
    import grpc
    import tensorflow as tf

    cpu = platform.processor()
    mem_gb = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo", encoding="utf-8") as f:
            kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
            mem_gb = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "grpcio": grpc.__version__,
        "aiohttp": aiohttp.__version__,
    }


def run_server_phases(args, base_path: str, batching: bool, workdir: str) -> dict:
    from model_server.client import start_server

    extra = [
        "--access_log_path=",
        f"--file_system_poll_wait_seconds={args.poll_seconds}",
        f"--max_instances_per_request={max(1024, args.concurrency)}",
    ]
    if batching:
        params = Path(workdir) / "batching.txt"
        params.write_text(
            f"max_batch_size {{ value: {args.concurrency} }}\n"
            f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
            f"max_enqueued_batches {{ value: 1000 }}\n"
            + (f"num_batch_threads {{ value: {args.num_batch_threads} }}\n" if args.num_batch_threads else "")
        )
        extra += ["--enable_batching", f"--batching_parameters_file={params}"]
    server = start_server(
        model_name=args.model_name,
        model_base_path=base_path,
        extra_args=extra,
        log_path=str(Path(workdir) / f"server-batching-{batching}.log"),
    )
    try:
        server.wait_for_model(args.model_name, timeout=args.load_timeout)
        phases = {}
        for protocol, factory in (
            ("rest", rest_call_factory(server.rest_url, args.model_name)),
            ("grpc", grpc_call_factory(server.grpc_target, args.model_name)),
        ):
            phases[protocol] = {
                "c1": closed_loop(factory, 1, args.duration, args.max_requests),
                f"c{args.concurrency}": closed_loop(factory, args.concurrency, args.duration, args.max_requests),
            }
            print(f"  batching {'on ' if batching else 'off'} {protocol:4s} done", flush=True)
        with server.rest_client() as rest:
            phases["metrics_excerpt"] = [
                line
                for line in rest.metrics_text().splitlines()
                if line.startswith(("model_server_batch_size_sum", "model_server_batch_size_count"))
            ]
    finally:
        code = server.stop()
    phases["server_exit_code"] = code
    return phases


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_base_path", default="", help="served model (default: build the toy model)")
    p.add_argument("--model_name", default="sentiment")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    p.add_argument("--max_requests", type=int, default=20_000, help="request cap per measured phase")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--toy_work_layers",
        type=int,
        default=0,
        help="toy model only: dense layers of per-instance work, to mimic an encoder's cost",
    )
    p.add_argument("--batch_timeout_micros", type=int, default=0)
    p.add_argument("--num_batch_threads", type=int, default=0)
    p.add_argument("--poll_seconds", type=float, default=30.0)
    p.add_argument("--load_timeout", type=float, default=600.0)
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    args = p.parse_args(argv)

    from model_server.model import ServableModel, import_op_libraries
    from model_server.repository import list_versions
    from model_server.toy_model import build_toy_model

    workdir = tempfile.mkdtemp(prefix="serve_bench-")
    base_path = args.model_base_path
    model_kind = "given"
    if not base_path:
        base_path = os.path.join(workdir, args.model_name)
        build_toy_model(os.path.join(base_path, "1"), work_layers=args.toy_work_layers)
        model_kind = "toy keyword model (model_server.toy_model)"
        if args.toy_work_layers:
            model_kind += f" with {args.toy_work_layers} dense 768-wide layers of work per instance"
    versions = list_versions(base_path)
    if not versions:
        p.error(f"no integer version directory under {base_path}")
    version = max(versions)

    print(
        f"model: {base_path} (version {version}); {args.duration:.0f}s per phase, concurrency {args.concurrency}",
        flush=True,
    )
    import_op_libraries()  # as the server does: the pipeline's models tokenize with TF Text ops
    model = ServableModel(args.model_name, version, versions[version])
    model.load(warmup=True, warmup_batch_sizes=(1, args.concurrency))
    in_process = {
        "c1_batch1": closed_loop(in_process_factory(model, 1), 1, args.duration, args.max_requests),
        f"batch{args.concurrency}": closed_loop(
            in_process_factory(model, args.concurrency), 1, args.duration, args.max_requests
        ),
    }
    print("  in-process done", flush=True)
    model.unload()
    server = {
        "batching_on": run_server_phases(args, base_path, True, workdir),
        "batching_off": run_server_phases(args, base_path, False, workdir),
    }

    c = f"c{args.concurrency}"
    limit = in_process[f"batch{args.concurrency}"]["instances_per_s"]
    rows = [("in-process", "-", in_process["c1_batch1"], in_process[f"batch{args.concurrency}"])]
    for mode in ("batching_on", "batching_off"):
        for protocol in ("rest", "grpc"):
            rows.append((protocol, mode.split("_")[1], server[mode][protocol]["c1"], server[mode][protocol][c]))
    ratios = {
        f"{mode}_{protocol}_{c}_vs_in_process_batched": round(server[mode][protocol][c]["instances_per_s"] / limit, 3)
        for mode in server
        for protocol in ("rest", "grpc")
    }

    header = (
        f"{'path':10s} {'batching':8s} {'c1 p50 ms':>10s} {'c1 p99 ms':>10s} {c + ' inst/s':>12s} "
        f"{c + ' p50 ms':>11s} {c + ' p99 ms':>11s} {'vs limit':>9s} {'errors':>6s}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name, mode, one, many in rows:
        errors = one["errors"] + many["errors"]
        print(
            f"{name:10s} {mode:8s} {one['p50_ms']:10.3f} {one['p99_ms']:10.3f} {many['instances_per_s']:12.1f} "
            f"{many['p50_ms']:11.3f} {many['p99_ms']:11.3f} {many['instances_per_s'] / limit:9.2f} {errors:6d}"
        )
    print(
        f"\n(in-process row: c1 = one sentence per call; {c} column = batches of {args.concurrency} sentences "
        f"in one call, the limit)"
    )

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 - explicit for readers
        "machine": machine(),
        "settings": {
            "model_base_path": args.model_base_path or "(toy model built on the fly)",
            "model": model_kind,
            "version": version,
            "duration_s": args.duration,
            "max_requests": args.max_requests,
            "concurrency": args.concurrency,
            "batch_timeout_micros": args.batch_timeout_micros,
            "num_batch_threads": args.num_batch_threads or os.cpu_count(),
            "max_batch_size": args.concurrency,
            "request": "one sentence per request",
            "client": "Python threads on the same machine (model_server.client), one client per thread",
        },
        "in_process": in_process,
        "server": server,
        "ratios": ratios,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
