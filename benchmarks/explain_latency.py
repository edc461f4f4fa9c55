"""Latency of the `explain` signature (integrated gradients) for one sentence and a full ~230-word review.

The network is the Trainer's (`pipeline_modules.trainer.model.build_model`) on the configured encoder, built
in-process (the offline default, all-MiniLM-L6-v2, 6 layers); the head is untrained, which changes the scores, not
the cost. Its `explain` signature is exported to a SavedModel and loaded back, so what is timed is what a server
runs, without HTTP. Each case (text x steps) is timed in interleaved rounds
whose order rotates, so a change in machine load hits every case alike; the figures are medians, and the load
average is recorded before and after. The attributions' miss (|sum - (probability - baseline)|) is reported too:
it is what more steps buy.

    python -m benchmarks.explain_latency                      # demo preset: 128 tokens, steps 32 and 8
    python -m benchmarks.explain_latency --steps 32 64 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

from benchmarks.common import machine, print_table, write_result

SENTENCE = "A wonderful film, although the ending was awful."
_REVIEW_SENTENCES = (
    "I went into this film expecting very little, and for the first half hour it gave me exactly that.",
    "The opening scenes drag, the dialogue is stiff, and the lead seems unsure whether he is in a comedy or a "
    "thriller.",
    "Then something changes: the story finds its footing, the score swells at the right moments, and the "
    "supporting cast, especially the sister, delivers performances that are nothing short of wonderful.",
    "The cinematography is gorgeous throughout, with long takes of the coastline that linger just long enough.",
    "Not everything works; a subplot about the missing letters is clumsy, and one twist near the end is awful, "
    "the kind of contrivance that makes you roll your eyes.",
    "Still, the final scene between the two brothers is honest, quiet and moving, and I left the theatre "
    "thinking about my own family.",
    "It is not a masterpiece, and it is too long by twenty minutes, but it is sincere, beautifully shot and "
    "often surprisingly funny.",
    "If you can forgive a slow start and a silly twist, you will find a warm, generous film that rewards patience.",
    "I would recommend it to anyone who enjoys character dramas, and I will happily watch it again.",
    "The director clearly loves these people, flaws and all, and that affection is contagious.",
    "Bring tissues for the last act, and maybe a coffee for the first, because the pacing early on really tests you.",
)
REVIEW = " ".join(_REVIEW_SENTENCES)


def _explain_function(args: argparse.Namespace, steps: int, export_root: str) -> Any:
    """The loaded SavedModel's `explain` signature at `steps` (exported once per step count)."""
    import tensorflow as tf

    from pipeline_modules.config import config_for
    from pipeline_modules.encoder import resolve_encoder
    from pipeline_modules.trainer.explain import EXPLAIN_SIGNATURE, Tokenization, explain_signatures
    from pipeline_modules.trainer.model import build_model

    config = config_for(args.preset)
    layers = config.encoder_num_layers or None
    encoder = resolve_encoder(
        config.encoder_handle or None, config.resolved_path(config.encoder_cache_dir), num_layers=layers
    )
    max_len = args.max_seq_length or config.max_seq_length
    tf.keras.utils.set_random_seed(1)
    model = build_model(encoder.path, pooling=config.pooling, dropout=config.dropout)
    tokenization = Tokenization(encoder.vocab_file, encoder.do_lower_case, max_len, config.head_fraction)
    signatures = explain_signatures(model, tokenization, steps)
    if not signatures:
        raise SystemExit(f"encoder {encoder.path} gives no explain signature (see the log): nothing to time")
    export_dir = os.path.join(export_root, f"steps{steps}")
    model.save(export_dir, save_format="tf", signatures=signatures, include_optimizer=False)
    return tf.saved_model.load(export_dir).signatures[EXPLAIN_SIGNATURE], max_len


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="explain-bench-") as root:
        functions = {}
        for steps in args.steps:
            functions[steps], max_len = _explain_function(args, steps, root)
        texts = {"sentence": SENTENCE, "review": REVIEW}
        cases = [(name, steps) for name in texts for steps in args.steps]
        times: dict[tuple[str, int], list[float]] = {case: [] for case in cases}
        outputs: dict[tuple[str, int], dict[str, Any]] = {}
        for name, steps in cases:  # warm-up: the first call of a shape pays for the graph's set-up
            outputs[(name, steps)] = {
                k: v.numpy() for k, v in functions[steps](text=tf.constant([texts[name]])).items()
            }
        load_before = os.getloadavg()
        for round_index in range(args.rounds):
            shift = round_index % len(cases)
            for name, steps in cases[shift:] + cases[:shift]:
                started = time.perf_counter()
                functions[steps](text=tf.constant([texts[name]]))["attributions"].numpy()
                times[(name, steps)].append(time.perf_counter() - started)
        load_after = os.getloadavg()
    rows = []
    for name, steps in cases:
        out = outputs[(name, steps)]
        delta = float(out["probability"][0] - out["baseline_probability"][0])
        rows.append(
            {
                "text": name,
                "words": len(texts[name].split()),
                "truncated_words": int(out["truncated"][0].sum()),
                "steps": steps,
                "median_ms": 1000 * statistics.median(times[(name, steps)]),
                "min_ms": 1000 * min(times[(name, steps)]),
                "calls": len(times[(name, steps)]),
                "completeness_miss": abs(float(np.sum(out["attributions"][0])) - delta),
                "probability_minus_baseline": delta,
            }
        )
    return {
        "machine": machine(),
        "preset": args.preset,
        "max_seq_length": max_len,
        "rounds": args.rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cases": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="encoder, layers and max_seq_length come from it")
    parser.add_argument("--max-seq-length", type=int, default=0, help="default: the preset's")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="default: the configured and 8")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds of every case")
    parser.add_argument("--output", default=None, help="default benchmarks/results/explain-latency[-<preset>].json")
    args = parser.parse_args(argv)
    if args.steps is None:
        from pipeline_modules.config import config_for

        args.steps = list(dict.fromkeys([config_for(args.preset).explain_steps, 8]))
    result = measure(args)
    name = "explain-latency" if args.preset == "demo" else f"explain-latency-{args.preset}"
    path = write_result(name, result, args.output)
    headers = ["text", "words", "cut", "steps", "median ms", "min ms", "calls", "miss", "p - p0"]
    keys = ["text", "words", "truncated_words", "steps", "median_ms", "min_ms", "calls", "completeness_miss"]
    print_table(headers, [[row[k] for k in keys] + [row["probability_minus_baseline"]] for row in result["cases"]])
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
