"""Command line: score a CSV, JSON Lines or Parquet file with the pushed model or a running server.

    bert-imdb-score reviews.csv --model serving_model/bert_imdb            # newest pushed version, in-process
    bert-imdb-score reviews.jsonl --rest localhost:8501 --model-name bert_imdb
    python -m pipeline_modules.scoring reviews.parquet --grpc localhost:8500 -o scored.parquet

Writes ``reviews.scored.csv`` (the input's rows and columns, plus ``probability`` and ``label``) and
``reviews.scored.rejects.jsonl`` (one line per row that could not be scored: row number, reason, message), and prints
how many rows went to each. Exit status 2 with one message line for a wrong file, format, column or model; 1 when
scoring had to stop part-way (the server went away): then neither file is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline_modules import features
from pipeline_modules.scoring.rows import FORMATS, ScoringError, detect_format, short
from pipeline_modules.scoring.run import ScoreOptions, open_reader, score_file
from pipeline_modules.scoring.scorers import Scorer

PROG = "bert-imdb-score"
_PROGRESS = {"auto": None, "on": True, "off": False}


def build_parser() -> argparse.ArgumentParser:
    defaults = ScoreOptions()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="a .csv / .tsv, .jsonl / .ndjson or .parquet file")
    p.add_argument("-o", "--output", default="", help="where to write the scored rows (default INPUT.scored.EXT)")
    p.add_argument("--rejects", default="", help="the rejects file (default OUTPUT-without-extension.rejects.jsonl)")
    source = p.add_argument_group("model (one of)").add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="PATH", help="a SavedModel folder, or a base path (newest version)")
    source.add_argument("--rest", metavar="URL", help="a model server's REST address, e.g. localhost:8501")
    source.add_argument("--grpc", metavar="TARGET", help="a model server's gRPC address, e.g. localhost:8500")
    p.add_argument("--model-name", default="bert_imdb", help="the served model's name (--rest, --grpc)")
    p.add_argument("--signature-name", default=features.SERVING_SIGNATURE)
    p.add_argument("--text-column", default=defaults.text_column, help="the column (JSON key) holding the text")
    p.add_argument("--format", default="", choices=("", *FORMATS), help="default: from the input's extension")
    p.add_argument("--delimiter", default="", help="CSV field delimiter (default: tab for .tsv, else comma)")
    p.add_argument("--probability-column", default=defaults.probability_column)
    p.add_argument("--label-column", default=defaults.label_column)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="texts per model call or request")
    p.add_argument("--chunk-size", type=int, default=defaults.chunk_size, help="rows held in memory at a time")
    p.add_argument("--concurrency", type=int, default=defaults.concurrency, help="model calls or requests in flight")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (--rest, --grpc)")
    p.add_argument("--progress", choices=tuple(_PROGRESS), default="auto", help="bar on stderr (auto: on a terminal)")
    return p


def _scorer(args: argparse.Namespace) -> Scorer:
    from pipeline_modules.scoring import scorers

    if args.model:
        return scorers.InProcessScorer(args.model, args.signature_name)
    if args.rest:
        return scorers.RestScorer(args.rest, args.model_name, args.signature_name, timeout=args.timeout)
    return scorers.GrpcScorer(args.grpc, args.model_name, args.signature_name, timeout=args.timeout)


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = ScoreOptions(
        text_column=args.text_column,
        probability_column=args.probability_column,
        label_column=args.label_column,
        format=args.format,
        delimiter=args.delimiter,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        concurrency=args.concurrency,
        progress=_PROGRESS[args.progress],
    )
    source = Path(args.input)
    try:
        # The file, its format and its columns are checked before the model loads: a typo costs no wait.
        open_reader(source, detect_format(source, args.format), options).close()
        scorer = _scorer(args)
    except ScoringError as error:
        _error(str(error))
        return 2
    try:
        summary = score_file(source, scorer, args.output or None, args.rejects or None, options)
    except ScoringError as error:
        _error(str(error))
        return 2
    except KeyboardInterrupt:
        _error("interrupted: nothing written")
        return 130
    except Exception as error:  # noqa: BLE001 - the server went away, the disk filled: one line, not a traceback
        _error(f"scoring stopped, nothing written: {type(error).__name__}: {short(error)}")
        return 1
    finally:
        scorer.close()
    print(summary.line())
    return 0


__all__ = ["PROG", "build_parser", "main"]
