"""Serving benchmark: the server's latency (p50/p95/p99) and throughput at several concurrency levels, over REST and
gRPC, for short (one sentence) and long (full review) inputs, against the same SavedModel called in-process.

    python -m benchmarks.serve_bench                                  # the toy model, built on the fly
    python -m benchmarks.serve_bench --model_base_path serving_model/bert_imdb --duration 8
    python -m benchmarks.serve_bench --protocols rest grpc v2_rest v2_grpc      # KServe V2 beside TF Serving's APIs

Every request carries one input: a sentence (``short``) or a full movie review of 340-370 BERT word pieces (``long``,
more than any exported ``max_seq_length``, so the model always fills its longest sequence). For each protocol x input x
concurrency level (``--concurrency 1 8 32``) the server runs with batching on (``max_batch_size`` = the highest level);
with batching off only the highest level is measured, for short inputs (``--no_batching_off`` skips it). The
in-process reference runs the model layer directly: one input per call, one call after another (latency), and batches
of the highest concurrency level in one call (throughput: the limit the server approaches).

Loops are bounded by ``--duration`` and ``--max_requests`` and only talk to 127.0.0.1. Client and server share this
machine's cores, so server figures include the client's CPU cost. Every model the benchmark serves must have the
pipeline's ``serving_default`` signature (a ``text`` input); the toy model is the tests' double
(``tests/doubles/toy_model.py``). Prints a table, writes
``benchmarks/results/serve.json`` (headline keys at the top; ``..._c32`` means the highest concurrency level measured,
``headline_concurrency``) and a latency-vs-concurrency plot next to it (``benchmarks/plots.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import RESULTS_DIR, print_table, write_result
from benchmarks.serve_clients import (  # noqa: F401 - re-exported: tests and other benchmarks import them from here
    CALL_FACTORIES,
    SIGNATURE,
    TEXT_INPUT,
    closed_loop,
    grpc_call_factory,
    in_process_factory,
    rest_call_factory,
    v2_grpc_call_factory,
    v2_rest_call_factory,
)
from benchmarks.texts import REVIEWS, SENTENCES

INPUTS: dict[str, list[str]] = {"short": SENTENCES, "long": REVIEWS}
PROTOCOLS = ("rest", "grpc", "v2_rest", "v2_grpc")  # TF Serving's REST and gRPC; the Open Inference Protocol's
DEFAULT_PROTOCOLS = ("rest", "grpc")


# --- the run ---------------------------------------------------------------------------------------------------------


def run_server_phases(
    args: argparse.Namespace, base_path: str, batching: bool, workdir: str, plan: Sequence[tuple[str, int]]
) -> dict[str, object]:
    """Start a server, measure each (input, concurrency) of ``plan`` over both protocols, stop it.

    Returns ``{protocol: {input: {"c<n>": stats}}, "metrics_excerpt": [...], "server_exit_code": int}``."""
    from model_server.process import start_server

    top = max(args.concurrency)
    extra = [
        "--access_log_path=",
        f"--file_system_poll_wait_seconds={args.poll_seconds}",
        f"--max_instances_per_request={max(1024, top)}",
    ]
    if batching:
        params = Path(workdir) / "batching.txt"
        params.write_text(
            f"max_batch_size {{ value: {top} }}\n"
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
    phases: dict[str, object] = {}
    try:
        server.wait_for_model(args.model_name, timeout=args.load_timeout)
        for protocol in args.protocols:
            per_input: dict[str, dict[str, dict]] = {}
            for kind, concurrency in plan:
                texts = INPUTS[kind]
                target = server.rest_url if protocol.endswith("rest") else server.grpc_target
                factory = CALL_FACTORIES[protocol](target, args.model_name, texts)
                stats = closed_loop(factory, concurrency, args.duration, args.max_requests, args.warmup_requests)
                per_input.setdefault(kind, {})[f"c{concurrency}"] = stats
                print(
                    f"  batching {'on ' if batching else 'off'} {protocol:7s} {kind:5s} c{concurrency:<3d} "
                    f"p50 {_fmt(stats['p50_ms'])} ms, {stats['instances_per_s']:.1f} inst/s, "
                    f"{stats['errors']} errors",
                    flush=True,
                )
            phases[protocol] = per_input
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _get(tree: dict, *keys: str) -> dict | None:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def headline(in_process: dict, server: dict, top: int) -> dict[str, object]:
    """The issue's top-level figures. ``_c32`` stands for the highest concurrency level measured (``top``)."""
    c_top = f"c{top}"
    limit = _get(in_process, "short", f"batch{top}")
    best_protocol, best = None, None
    for protocol in PROTOCOLS:
        stats = _get(server, "batching_on", protocol, "short", c_top)
        if stats and (best is None or stats["instances_per_s"] > best["instances_per_s"]):
            best_protocol, best = protocol, stats
    short_c1 = _get(server, "batching_on", "rest", "short", "c1")
    long_top = _get(server, "batching_on", "rest", "long", c_top)
    in_process_eps = limit["instances_per_s"] if limit else None
    server_eps = best["instances_per_s"] if best else None
    return {
        "in_process_examples_per_s": in_process_eps,
        "server_examples_per_s_c32": server_eps,
        "server_examples_per_s_c32_protocol": best_protocol,
        "server_vs_in_process_c32": round(server_eps / in_process_eps, 3) if in_process_eps and server_eps else None,
        "p50_ms_short_c1": short_c1["p50_ms"] if short_c1 else None,
        "p99_ms_long_c32": long_top["p99_ms"] if long_top else None,
        "headline_concurrency": top,
        "headline_note": (
            f"_c32 keys are at concurrency {top} (the highest level measured) with batching on, "
            f"in-process batch = {top}; throughput and p50 use short inputs, p99_ms_long_c32 long ones (REST)"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_base_path", default="", help="served model (default: build the toy model)")
    p.add_argument("--model_name", default="sentiment")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    p.add_argument("--max_requests", type=int, default=20_000, help="request cap per measured phase")
    p.add_argument("--warmup_requests", type=int, default=3, help="unmeasured requests per client before a phase")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrency levels")
    p.add_argument("--inputs", nargs="+", choices=sorted(INPUTS), default=["short", "long"], help="input kinds")
    p.add_argument("--no_batching_off", action="store_true", help="skip the batching-off server (short, top level)")
    p.add_argument(
        "--protocols",
        nargs="+",
        choices=PROTOCOLS,
        default=list(DEFAULT_PROTOCOLS),
        help="rest / grpc: TF Serving's APIs; v2_rest / v2_grpc: the Open Inference Protocol (KServe V2), same model",
    )
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
    p.add_argument("--output", default=str(RESULTS_DIR / "serve.json"))
    p.add_argument(
        "--plot_output",
        default="",
        help="latency-vs-concurrency PNG (default: next to --output, latency-vs-concurrency.png for serve.json, "
        "<output stem>-latency-vs-concurrency.png otherwise)",
    )
    p.add_argument("--no_plot", action="store_true", help="do not draw the plot")
    args = p.parse_args(argv)
    if any(c < 1 for c in args.concurrency):
        p.error("--concurrency levels must be positive")
    args.concurrency = sorted(set(args.concurrency))
    args.protocols = [x for x in PROTOCOLS if x in args.protocols]  # canonical order, no duplicates
    kinds = [k for k in INPUTS if k in args.inputs]  # canonical order, no duplicates
    top = max(args.concurrency)

    from model_server.model import ServableModel, import_op_libraries
    from model_server.repository import list_versions
    from tests.doubles.toy_model import build_toy_model

    workdir = tempfile.mkdtemp(prefix="serve_bench-")
    base_path = args.model_base_path
    model_kind = "given"
    if not base_path:
        base_path = os.path.join(workdir, args.model_name)
        build_toy_model(os.path.join(base_path, "1"), work_layers=args.toy_work_layers)
        model_kind = "toy keyword model (tests/doubles/toy_model.py)"
        if args.toy_work_layers:
            model_kind += f" with {args.toy_work_layers} dense 768-wide layers of work per instance"
    versions = list_versions(base_path)
    if not versions:
        p.error(f"no integer version directory under {base_path}")
    version = max(versions)

    print(
        f"model: {base_path} (version {version}); {args.duration:g}s per phase, inputs {' '.join(kinds)}, "
        f"concurrency {' '.join(map(str, args.concurrency))}",
        flush=True,
    )
    import_op_libraries()  # as the server does: the pipeline's models tokenize with TF Text ops
    model = ServableModel(args.model_name, version, versions[version])
    model.load(warmup=True, warmup_batch_sizes=(1, top))
    in_process: dict[str, dict] = {}
    for kind in kinds:
        texts = INPUTS[kind]
        in_process[kind] = {
            "c1_batch1": closed_loop(
                in_process_factory(model, texts, 1), 1, args.duration, args.max_requests, args.warmup_requests
            ),
            f"batch{top}": closed_loop(
                in_process_factory(model, texts, top), 1, args.duration, args.max_requests, args.warmup_requests
            ),
        }
        print(f"  in-process {kind} done", flush=True)
    model.unload()

    server: dict[str, dict] = {
        "batching_on": run_server_phases(
            args, base_path, True, workdir, [(kind, c) for kind in kinds for c in args.concurrency]
        )
    }
    if not args.no_batching_off and "short" in kinds:
        server["batching_off"] = run_server_phases(args, base_path, False, workdir, [("short", top)])

    c_top = f"c{top}"
    ratios = {}
    for mode, phases in server.items():
        for protocol in args.protocols:
            for kind, levels in phases[protocol].items():
                if c_top in levels:
                    limit = in_process[kind][f"batch{top}"]["instances_per_s"]
                    ratios[f"{mode}_{protocol}_{kind}_{c_top}_vs_in_process_batched"] = (
                        round(levels[c_top]["instances_per_s"] / limit, 3) if limit else None
                    )

    rows = []
    for kind in kinds:
        for key, stats in in_process[kind].items():
            label = "c1" if key == "c1_batch1" else f"batch {top}"
            rows.append(["in-process", "-", kind, label, *_row(stats), None])
    for mode, phases in server.items():
        for protocol in args.protocols:
            for kind, levels in phases[protocol].items():
                for level, stats in levels.items():
                    ratio = (
                        ratios.get(f"{mode}_{protocol}_{kind}_{level}_vs_in_process_batched")
                        if level == c_top
                        else None
                    )
                    rows.append([protocol, mode.split("_")[1], kind, level, *_row(stats), ratio])
    print()
    print_table(
        [
            "path",
            "batching",
            "input",
            "conc.",
            "requests",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "mean ms",
            "inst/s",
            "errors",
            "vs limit",
        ],
        rows,
    )
    print(
        f"\n(in-process: c1 = one input per call; batch {top} = {top} inputs in one call, the limit the server "
        f"approaches; vs limit = server inst/s / in-process batch {top} inst/s for the same input)"
    )

    payload = {
        **headline(in_process, server, top),
        "settings": {
            "model_base_path": args.model_base_path or "(toy model built on the fly)",
            "model": model_kind,
            "version": version,
            "duration_s": args.duration,
            "max_requests": args.max_requests,
            "warmup_requests_per_client": args.warmup_requests,
            "concurrency": args.concurrency,
            "inputs": {
                kind: {
                    "texts": len(INPUTS[kind]),
                    "mean_words": round(statistics.fmean(len(t.split()) for t in INPUTS[kind]), 1),
                }
                for kind in kinds
            },
            "protocols": args.protocols,
            "batching_off_measured": "batching_off" in server,
            "batch_timeout_micros": args.batch_timeout_micros,
            "num_batch_threads": args.num_batch_threads or os.cpu_count(),
            "max_batch_size": top,
            "request": "one input (a sentence or a full review) per request",
            "client": "Python threads on the same machine (model_server.client), one client per thread",
        },
        "in_process": in_process,
        "server": server,
        "ratios": ratios,
    }
    out = write_result("serve", payload, args.output)
    print(f"wrote {out}")
    if not args.no_plot:
        from benchmarks.plots import plot_latency_vs_concurrency

        png = Path(args.plot_output) if args.plot_output else _default_plot_path(out)
        print(f"wrote {plot_latency_vs_concurrency(out, png)}")
    shutil.rmtree(workdir, ignore_errors=True)  # the toy model and server logs; kept when a phase raised
    return 0


def _row(stats: dict) -> list:
    return [
        stats["requests"],
        _fmt(stats["p50_ms"]),
        _fmt(stats["p95_ms"]),
        _fmt(stats["p99_ms"]),
        _fmt(stats["mean_ms"]),
        f"{stats['instances_per_s']:.1f}",
        stats["errors"],
    ]


def _default_plot_path(output: Path) -> Path:
    name = "latency-vs-concurrency.png"
    return output.with_name(name if output.stem == "serve" else f"{output.stem}-{name}")


if __name__ == "__main__":
    sys.exit(main())
