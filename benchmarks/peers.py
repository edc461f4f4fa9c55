"""Peers benchmark: our served path against ONNX Runtime on the same weights, each timed from text to probability.

    python -m benchmarks.peers                              # the full preset: 6-layer MiniLM, 256 tokens, 5 rounds
    python -m benchmarks.peers --preset smoke --rounds 1    # 2 layers, 32 tokens: a minute or two, for the tests
    python -m benchmarks.peers --imdb-archive aclImdb_v1.tar.gz   # real reviews instead of benchmarks/texts.py's

One model, built here from the preset's encoder (`build_model`, mean or CLS pooling, a fixed random head) and exported
with the product's Transform graph and `export_serving_model`, is run by:
  ours       `model_server.model.ServableModel` on the export, in-process (`serving_default` on the engine the
             server picks: ONNX Runtime when the export carries its graph)
  ours_one_call  the same with `--onnx_max_call_tokens=0`: each batch one ONNX Runtime call, as before call
             planning (`model_server.onnx_engine.call_groups`), to show that lever in the same run
  ours_int8  the same, on a copy of the export whose manifest serves the Trainer's int8 graph (per output channel):
             our path when the Trainer's int8 gate passes (speed only, see `peer_engines.int8_export`)
  baseline_tf the same export through `tf.saved_model.load`: today's fp32 TF path, whatever the server does later
  ort_fp32 / ort_int8  `pipeline_modules.encoder.onnx_graph` of the same Keras weights, in ONNX Runtime (int8:
             `quantize_dynamic`), tokenized by Hugging Face `tokenizers` with the encoder's vocab, as its users would
  rest / grpc the model server on the export (batching off, as TF Serving's default), concurrency 1, one keep-alive
             client (batch 1 x short only); rest_wrk: the same server from `wrk` with one connection, so that
             the REST figure (`rest_p50_ms_short_c1`) is the server's, not a Python client's on the same cores
then, with the server's batching on, concurrency 32 from `wrk` (a low-CPU REST load generator; skipped, saying so,
when it is not installed). Workloads: batch 1 x a short sentence, batch 32 x short sentences, batch 32 x full reviews.
Rounds interleave every engine (A, B, C, A, B, C..., the order rotating); figures are medians over rounds of each
round's median call (also over the rounds where other processes used under 0.3 cores: `p50_ms_quiet_rounds`);
other processes' CPU use is recorded per round. PyTorch is not measured (see `NOT_MEASURED`).
Training is measured after the serving rounds, in the same run (`train_bench --speed`: `hub_fp32`, the Trainer's old
build, against `in_process_bf16`, batch 32 x 256); `--train-rounds 0` reads benchmarks/results/train-speed.json.
Writes benchmarks/results/peers.json and prints a table.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, machine, matmul_peak_flops, print_table, write_result
from benchmarks.peer_engines import (
    MODEL,
    SIGNATURE,
    Predict,
    SelfTimed,
    baseline_tf,
    build_and_export,
    int8_export,
    ort_engine,
    ours,
    remote,
    serve,
    wrk_c1,
)
from benchmarks.serve_clients import wrk_post
from benchmarks.texts import REVIEWS, SENTENCES
from benchmarks.train_bench import QUIET_CORES, OtherLoad

NOT_MEASURED = {
    "pytorch": "not installable on this project's stacks: its PyPI wheel pulls CUDA and it is not in stacks/locks",
}
WORKLOADS = ("short_b1", "short_b32", "long_b32")

# --- the run ---------------------------------------------------------------------------------------------------------


def load_texts(args: argparse.Namespace, config: Any) -> dict[str, list[str]]:
    reviews, source = list(REVIEWS), "benchmarks/texts.py REVIEWS (synthetic, 340-370 word pieces)"
    if args.imdb_archive:
        from pipeline_modules.data.read import read_imdb

        records = read_imdb(args.imdb_archive, seed=config.data_seed, log=None).splits["eval"][: args.long_batch]
        reviews, source = [r.text for r in records], f"IMDB test split of {args.imdb_archive}"
    args.long_source = source
    cycle = lambda texts, n: [texts[i % len(texts)] for i in range(n)]  # noqa: E731
    return {
        "short_b1": SENTENCES[:1],
        "short_b32": cycle(SENTENCES, args.short_batch),
        "long_b32": cycle(reviews, args.long_batch),
    }


def train_in_this_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """`train_bench --speed` in this process, after the serving rounds: the baseline (`hub_fp32`) and the Trainer's
    fast build, interleaved at batch `--train-batch` x `--train-seq-length`, its peaks measured in the same run."""
    from benchmarks import train_bench

    output = workdir / "train-speed.json"
    argv = [
        "--speed",
        f"--preset={args.preset}",
        "--variants",
        *args.train_variants,
        f"--rounds={args.train_rounds}",
        f"--steps={args.train_steps}",
        f"--batch-size={args.train_batch}",
        f"--seq-length={args.train_seq_length}",
        f"--peak-seconds={args.peak_seconds}",
        f"--output={output}",
    ]
    print(f"Training, {args.train_rounds} interleaved rounds of {', '.join(args.train_variants)} ...", flush=True)
    if train_bench.main(argv) != 0:
        raise RuntimeError("train_bench --speed failed")
    record = json.loads(output.read_text())
    figures = training_figures(output)
    figures["train_source"] = (
        f"this run ({record.get('train_variant')} vs {train_bench.SPEED_BASELINE}, batch {record.get('batch_size')} "
        f"x {record.get('seq_length')}, {args.train_rounds} rounds of {args.train_steps} steps)"
    )
    kept = ("variants", "speedup", "speedup_best_steps", "matmul_peak", "rounds")
    figures["training"] = {k: record[k] for k in kept if k in record}
    return figures


def training_figures(path: Path) -> dict[str, Any]:
    """The training figures of `benchmarks.train_bench --speed` (its JSON), not measured again here."""
    if not path.is_file():
        return {
            "train_examples_per_s_baseline": None,
            "train_examples_per_s": None,
            "train_source": None,
            "train_note": f"not measured here (the training benchmark's job): {path} "
            "(python -m benchmarks.train_bench --speed) does not exist yet",
        }
    record = json.loads(path.read_text())
    return {
        "train_examples_per_s_baseline": record.get("train_examples_per_s_baseline"),
        "train_examples_per_s": record.get("train_examples_per_s"),
        "train_source": f"{path.name} of {record.get('date')} ({record.get('train_variant')}, batch "
        f"{record.get('batch_size')} x {record.get('seq_length')}): another run, not this one",
    }


Engine = Predict | SelfTimed


def run_rounds(
    engines: dict[str, dict[str, Engine]], texts: dict[str, list[str]], args: argparse.Namespace, pids: list[int]
) -> Any:
    """Every (workload, engine) once per round, in an order that rotates; each timed `repeats` calls after one warm
    (a `SelfTimed` client runs once per round and reports its own median)."""
    pairs = [(w, e) for w in WORKLOADS for e in engines if w in engines[e]]
    for workload, engine in pairs:
        warm = engines[engine][workload]  # shapes, allocations, tracing
        warm.run() if isinstance(warm, SelfTimed) else warm(texts[workload])
    calls: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    rounds = []
    for r in range(args.rounds):
        load, loadavg = OtherLoad(pids), os.getloadavg()[0]  # the server's CPU is ours, not other processes'
        order = pairs[r % len(pairs) :] + pairs[: r % len(pairs)]
        for workload, engine in order:
            predict, batch = engines[engine][workload], texts[workload]
            if isinstance(predict, SelfTimed):
                calls[(workload, engine)].append(predict.run())
                continue
            repeats = args.repeats * (10 if workload == "short_b1" else 1)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                predict(batch)
                times.append(time.perf_counter() - started)
            calls[(workload, engine)].append(statistics.median(times))
        rounds.append({"round": r, "loadavg_1m": round(loadavg, 2), "other_cores": round(load.cores(), 2)})
        print(f"  round {r}: other processes used {rounds[-1]['other_cores']} cores", flush=True)
    results: dict[str, dict[str, Any]] = {w: {} for w in WORKLOADS}
    for (workload, engine), medians in calls.items():
        seconds = statistics.median(medians)
        quiet = [m for m, rd in zip(medians, rounds, strict=True) if rd["other_cores"] < QUIET_CORES]
        results[workload][engine] = {
            "p50_ms": round(seconds * 1000, 3),
            "examples_per_s": round(len(texts[workload]) / seconds, 2),
            "round_medians_ms": [round(m * 1000, 3) for m in medians],
            "p50_ms_quiet_rounds": round(statistics.median(quiet) * 1000, 3) if quiet else None,
        }
    return results, rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full", help="encoder, layers, max_seq_length and pooling come from it")
    parser.add_argument("--imdb-archive", default=None, help="real IMDB test reviews for the long workload")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per engine and round (x10 at batch 1)")
    parser.add_argument("--short-batch", type=int, default=32)
    parser.add_argument("--long-batch", type=int, default=32)
    parser.add_argument("--peak-seconds", type=float, default=3.0)
    parser.add_argument("--wrk-seconds", type=int, default=10, help="0 skips the concurrency-32 wrk run")
    parser.add_argument("--wrk-c1-seconds", type=int, default=3, help="per round; 0: REST c1 from Python's client only")
    training = parser.add_argument_group("training, measured after the serving rounds (train_bench --speed)")
    training.add_argument("--train-rounds", type=int, default=3, help="0: read --train-result instead")
    training.add_argument("--train-steps", type=int, default=2, help="timed steps per variant and round")
    training.add_argument("--train-batch", type=int, default=32)
    training.add_argument("--train-seq-length", type=int, default=256)
    training.add_argument("--train-variants", nargs="+", default=["hub_fp32", "in_process_bf16"])
    training.add_argument("--train-result", default=str(RESULTS_DIR / "train-speed.json"), help="train_bench --speed's")
    parser.add_argument("--no-server", action="store_true", help="in-process engines only")
    parser.add_argument("--output", default=None, help="default benchmarks/results/peers[-<preset>].json")
    args = parser.parse_args(argv)

    from pipeline_modules.config import config_for
    from pipeline_modules.encoder.onnx_graph import quantize_dynamic_int8, sentiment_model_to_onnx
    from pipeline_modules.environment import resolve_encoder_for

    config = config_for(args.preset)
    encoder = resolve_encoder_for(config)
    texts = load_texts(args, config)
    engine_log = logging.getLogger("model_server.onnx_engine")  # its engine line says why a graph is not used
    engine_log.setLevel(logging.INFO)
    if not logging.getLogger().handlers:  # TFX's imports usually configure the root logger; else print it here
        engine_log.addHandler(logging.StreamHandler())
    workdir = Path(tempfile.mkdtemp(prefix="peers-"))
    print(f"Encoder {encoder.path}, {config.max_seq_length} tokens; exporting the model ...", flush=True)
    model, base_path = build_and_export(config, encoder, workdir)
    print("Measuring the float32 matmul peak ...", flush=True)
    peak_before = matmul_peak_flops(seconds=args.peak_seconds)
    fp32_graph = sentiment_model_to_onnx(model, outputs=["probability"])
    ort_args = (encoder.vocab_file, encoder.do_lower_case, config.max_seq_length)
    engines: dict[str, dict[str, Engine]] = {}
    our_predict, servable = ours(base_path)
    ours_engine = servable.engines.get(SIGNATURE, "tensorflow")  # before unload, which forgets it
    print(f"ours: {SIGNATURE} runs on {ours_engine}", flush=True)
    engines["ours"] = dict.fromkeys(WORKLOADS, our_predict)
    one_call_predict, one_call_servable = ours(base_path, max_call_tokens=0)
    engines["ours_one_call"] = {w: one_call_predict for w in ("short_b32", "long_b32")}
    engines["baseline_tf"] = dict.fromkeys(WORKLOADS, baseline_tf(base_path))
    engines["ort_fp32"] = dict.fromkeys(WORKLOADS, ort_engine(fp32_graph, *ort_args))
    not_measured = dict(NOT_MEASURED)
    servables, ours_int8_engine = [servable, one_call_servable], None
    int8_base, why_not = int8_export(base_path, workdir)
    if int8_base is None:
        not_measured["ours_int8"] = why_not
    else:
        int8_predict, int8_servable = ours(int8_base)
        servables.append(int8_servable)
        ours_int8_engine = int8_servable.engines.get(SIGNATURE, "tensorflow")
        print(f"ours_int8: {SIGNATURE} runs on {ours_int8_engine}", flush=True)
        engines["ours_int8"] = dict.fromkeys(WORKLOADS, int8_predict)
    try:
        int8_graph = quantize_dynamic_int8(fp32_graph, str(workdir))
        engines["ort_int8"] = dict.fromkeys(WORKLOADS, ort_engine(int8_graph, *ort_args))
    except RuntimeError as e:
        not_measured["ort_int8"] = str(e)
    agreement: dict[str, dict[str, float]] = {}
    for workload in ("short_b32", "long_b32"):
        reference = our_predict(texts[workload])
        agreement[workload] = {}
        for name, run in engines.items():
            predict = run[workload]
            assert not isinstance(predict, SelfTimed)  # in-process engines only, so far
            got = predict(texts[workload])
            agreement[workload][name] = max(abs(float(a) - float(b)) for a, b in zip(got, reference, strict=True))
    server, clients, wrk = None, [], {"measured": False, "reason": "--no-server"}
    if not args.no_server:
        server = serve(base_path, workdir, batching=False)  # concurrency 1: TF Serving's default, no batch timeout
        for kind in ("rest", "grpc"):
            predict, client = remote(kind, server)
            engines[kind] = {"short_b1": predict}
            clients.append(client)
        if args.wrk_c1_seconds > 0 and shutil.which("wrk"):
            engines["rest_wrk"] = {"short_b1": wrk_c1(server, workdir, args.wrk_c1_seconds)}
    try:
        print(f"{args.rounds} interleaved rounds of {', '.join(engines)} ...", flush=True)
        results, rounds = run_rounds(engines, texts, args, [server.pid] if server is not None else [])
        if server is not None and args.wrk_seconds > 0:
            server.stop()
            server = serve(base_path, workdir, batching=True)
            print(f"wrk, concurrency 32, batching on, {args.wrk_seconds} s ...", flush=True)
            wrk = wrk_post(server.rest_url, MODEL, args.wrk_seconds, SENTENCES[0], workdir)
    finally:
        for client in clients:
            client.close()
        if server is not None:
            server.stop()
        for loaded in servables:
            loaded.unload()
    peak = max(peak_before, matmul_peak_flops(seconds=args.peak_seconds), key=lambda p: p["peak_flops"])
    train = train_in_this_run(args, workdir) if args.train_rounds > 0 else training_figures(Path(args.train_result))

    figure: Callable[[str, str, str], float | None] = lambda w, e, key: results[w].get(e, {}).get(key)  # noqa: E731
    payload = {
        "machine": {**machine(), **{m: importlib.metadata.version(m) for m in ("onnxruntime", "onnx", "tokenizers")}},
        "ours_p50_ms_short_b1": figure("short_b1", "ours", "p50_ms"),
        "ort_fp32_p50_ms_short_b1": figure("short_b1", "ort_fp32", "p50_ms"),
        "ours_examples_per_s_short_b32": figure("short_b32", "ours", "examples_per_s"),
        "ort_fp32_examples_per_s_short_b32": figure("short_b32", "ort_fp32", "examples_per_s"),
        "ours_examples_per_s_long_b32": figure("long_b32", "ours", "examples_per_s"),
        "ort_fp32_examples_per_s_long_b32": figure("long_b32", "ort_fp32", "examples_per_s"),
        "ort_int8_examples_per_s_long_b32": figure("long_b32", "ort_int8", "examples_per_s"),
        "baseline_tf_examples_per_s_long_b32": figure("long_b32", "baseline_tf", "examples_per_s"),
        "ours_int8_p50_ms_short_b1": figure("short_b1", "ours_int8", "p50_ms"),
        "ours_int8_examples_per_s_short_b32": figure("short_b32", "ours_int8", "examples_per_s"),
        "ours_int8_examples_per_s_long_b32": figure("long_b32", "ours_int8", "examples_per_s"),
        "ours_int8_engine": ours_int8_engine,
        "ours_one_call_examples_per_s_short_b32": figure("short_b32", "ours_one_call", "examples_per_s"),
        "ours_one_call_examples_per_s_long_b32": figure("long_b32", "ours_one_call", "examples_per_s"),
        "throughput_vs_baseline_tf": {
            w: {
                e: round(r["examples_per_s"] / results[w]["baseline_tf"]["examples_per_s"], 3)
                for e, r in results[w].items()
                if "baseline_tf" in results[w]
            }
            for w in ("short_b32", "long_b32")
        },
        **train,
        # the server's REST latency from the low-CPU client when there is one (wrk), else from Python's
        "rest_p50_ms_short_c1": figure("short_b1", "rest_wrk", "p50_ms") or figure("short_b1", "rest", "p50_ms"),
        "rest_c1_client": "wrk, one connection" if "rest_wrk" in results["short_b1"] else "Python (RestClient)",
        "rest_p50_ms_short_c1_python_client": figure("short_b1", "rest", "p50_ms"),
        "grpc_p50_ms_short_c1": figure("short_b1", "grpc", "p50_ms"),
        "rest_examples_per_s_short_c32": wrk.get("examples_per_s"),
        "ours_engine": ours_engine,  # which engine answered `ours` (model_server's ONNX engine or TensorFlow)
        "preset": args.preset,
        "encoder": {
            "path": encoder.path,
            "handle": encoder.handle,
            "max_seq_length": config.max_seq_length,
            "pooling": config.pooling,
        },  # fmt: skip
        "long_texts": args.long_source,
        "batch_sizes": {w: len(t) for w, t in texts.items()},
        "rounds": args.rounds,
        "repeats_per_round": args.repeats,
        # short: no truncation, so engines and tokenizers alone; long: HF truncates the end, ours keeps head and tail
        "max_abs_probability_difference_vs_ours": agreement,
        "matmul_peak": peak,
        "load": rounds,
        "results": results,
        "wrk_c32": wrk,
        "not_measured": not_measured,
        "notes": "ours = model_server.model.ServableModel in-process (its engine: ours_engine); baseline_tf = "
        "tf.saved_model.load of the same export (today's fp32 TF path); ORT: default session options, intra_op "
        "threads = cores, "
        "Hugging Face tokenizers padding to the batch's longest, truncating at max_seq_length (ours keeps head and "
        "tail)",
    }
    path = write_result("peers" if args.preset == "full" else f"peers-{args.preset}", payload, args.output)
    engines_seen = [e for e in (*engines, "ort_int8") if any(e in results[w] for w in WORKLOADS)]
    rows = [
        [e, *(results[w].get(e, {}).get("p50_ms") for w in WORKLOADS)]
        + [results[w].get(e, {}).get("examples_per_s") for w in WORKLOADS]
        for e in dict.fromkeys(engines_seen)
    ]
    print_table(["engine", *(f"{w} ms" for w in WORKLOADS), *(f"{w} /s" for w in WORKLOADS)], rows)
    print(f"wrk c32: {wrk}" if not wrk.get("measured") else f"wrk c32 REST: {wrk['examples_per_s']} req/s")
    print(f"not measured: {not_measured}\nwrote {path}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
