"""``python -m model_server``: the command line, with ``tensorflow_model_server``'s flags."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and serve until SIGTERM/SIGINT; returns the exit status (2: bad flags)."""
    # Before TensorFlow is imported: quiet its C++ start-up chatter. (SavedModels load without Keras, 2 or 3.)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = list(sys.argv[1:] if argv is None else argv)
    level = next((a.split("=", 1)[1] for a in args if a.startswith("--log_level=")), "INFO")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from model_server.config import parse_args, wants_version
    from model_server.model_config import ConfigError

    if wants_version(args):  # as tensorflow_model_server: print the versions, exit 0, no model flags needed
        from model_server import __version__
        from model_server.tf_serving_flags import version_text

        print(version_text(__version__))
        return 0
    try:
        options = parse_args(args)
    except ConfigError as exc:
        print(f"model_server: error: {exc}", file=sys.stderr)
        return 2
    from model_server.server import run

    return run(options)


if __name__ == "__main__":
    sys.exit(main())
