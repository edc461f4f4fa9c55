"""Command line: convert a Hugging Face-layout BERT checkpoint into a TF Hub-format BERT encoder SavedModel.

    python -m pipeline_modules.encoder.hf_to_tfhub HF_DIR OUTPUT_DIR [--num-layers N] [--overwrite]
        [--lower-case | --no-lower-case]

(also installed as ``bert-imdb-convert-encoder``). The work is `pipeline_modules.encoder.conversion.convert`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline_modules.encoder.conversion import convert


def main(argv: list[str] | None = None) -> int:
    """Command line: how a user brings "BERT from Hugging Face" into the pipeline."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_modules.encoder.hf_to_tfhub",
        description="Convert a Hugging Face BERT checkpoint (config.json, *.safetensors, vocab.txt) into a "
        "TF Hub-format BERT encoder SavedModel.",
    )
    parser.add_argument("hf_dir", type=Path, help="directory with config.json, *.safetensors and vocab.txt")
    parser.add_argument("output_dir", type=Path, help="where to write the SavedModel (must not exist)")
    parser.add_argument("--num-layers", type=int, default=None, help="keep only the first N transformer layers")
    parser.add_argument("--overwrite", action="store_true", help="replace output_dir if it exists")
    parser.add_argument(
        "--lower-case",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the tokenizer's casing (default: tokenizer_config.json, else inferred from vocab.txt)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        out = convert(
            args.hf_dir,
            args.output_dir,
            num_layers=args.num_layers,
            overwrite=args.overwrite,
            do_lower_case=args.lower_case,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
