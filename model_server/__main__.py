"""``python -m model_server``: the command line, with ``tensorflow_model_server``'s flags."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    # Before TensorFlow is imported: quiet C++ start-up chatter, and the project's Keras 2 choice (TFX 1.16).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    args = list(sys.argv[1:] if argv is None else argv)
    level = next((a.split("=", 1)[1] for a in args if a.startswith("--log_level=")), "INFO")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from model_server.config import ConfigError, parse_args

    try:
        options = parse_args(args)
    except ConfigError as exc:
        print(f"model_server: error: {exc}", file=sys.stderr)
        return 2
    from model_server.server import run

    return run(options)


if __name__ == "__main__":
    sys.exit(main())
