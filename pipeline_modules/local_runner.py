"""Command line: run the whole pipeline on this machine with TFX's LocalDagRunner.

    python -m pipeline_modules.local_runner --preset demo [--imdb-archive PATH] [--max-seq-length 256 ...]

(also installed as ``bert-imdb-pipeline``). Data and encoder are resolved by `pipeline_modules.environment`, before any
component runs, so a missing dataset or encoder stops the run at once with a message instead of minutes later inside
a component; this module adds the flags, the progress lines, the logging set-up and the closing summary.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from pipeline_modules import data
from pipeline_modules.config import (
    PRESETS,
    PipelineConfig,
    add_config_arguments,
    config_for,
    describe_presets,
    overrides_from_args,
)
from pipeline_modules.environment import (
    build_local_pipeline,
    components_to_run,
    prepare_data_source,
    resolve_encoder_for,
)

if TYPE_CHECKING:  # the encoder package loads TensorFlow
    from pipeline_modules.encoder import ResolvedEncoder


@contextlib.contextmanager
def component_progress(total: int, out: TextIO | None = None) -> Iterator[dict[str, float]]:
    """Prints a numbered line as each component starts and ends, with its wall time.

    LocalDagRunner has no progress hook and its own "Component X is running" log lines vanish once Beam and
    TensorFlow reconfigure logging, so this wraps the launcher that runs each component instead.
    """
    from tfx.orchestration.portable import launcher

    original = launcher.Launcher.launch
    timings: dict[str, float] = {}
    out = out or sys.stdout  # looked up now: notebooks and tests replace sys.stdout after import

    def launch(self: launcher.Launcher, *args: Any, **kwargs: Any) -> Any:
        component = self._pipeline_node.node_info.id  # noqa: SLF001 - the launcher's own node
        number = len(timings) + 1
        print(f"[{number}/{total}] {component} running ...", file=out, flush=True)
        started = time.monotonic()
        try:
            result = original(self, *args, **kwargs)
        except BaseException:
            print(
                f"[{number}/{total}] {component} FAILED after {time.monotonic() - started:.1f} s", file=out, flush=True
            )
            raise
        timings[component] = time.monotonic() - started
        print(f"[{number}/{total}] {component} finished in {timings[component]:.1f} s", file=out, flush=True)
        return result

    launcher.Launcher.launch = launch  # type: ignore[method-assign]  # the only hook there is: see above
    try:
        yield timings
    finally:
        launcher.Launcher.launch = original  # type: ignore[method-assign]


class _QuietThirdParty(logging.Filter):
    """Shows this project's INFO lines and everyone's warnings; TFX/Beam INFO chatter only with --verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.startswith("pipeline_modules")


def configure_logging(verbose: bool) -> None:
    """INFO lines with their logger's name, the third-party ones filtered out unless `verbose`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_QuietThirdParty())


def run(config: PipelineConfig, *, source: str, encoder: ResolvedEncoder, to_component: str | None = None) -> int:
    """Run every component with LocalDagRunner, printing progress, then the run's timings, metrics and push.

    `to_component` makes it a partial run: that component and everything upstream of it (e.g. the data components
    only, to measure Beam, or to inspect Transform's output before paying for training).
    """
    from tfx import v1 as tfx
    from tfx.orchestration.pipeline import RunOptions

    from pipeline_modules.run_summary import format_summary, latest_run

    pipeline = build_local_pipeline(config, source=source, encoder=encoder)
    print(
        f"Pipeline {config.pipeline_name} ({config.preset}): {len(pipeline.components)} components, "
        f"root {config.pipeline_root_path}",
        flush=True,
    )
    started = time.monotonic()
    run_options = None
    if to_component:
        known = [c.id for c in pipeline.components]
        if to_component not in known:
            raise ValueError(f"Unknown component {to_component!r}; the pipeline has {', '.join(known)}")
        run_options = RunOptions(to_nodes=[to_component])
    with component_progress(len(components_to_run(pipeline, to_component))):
        tfx.orchestration.LocalDagRunner().run(pipeline, run_options=run_options)
    print(f"Pipeline finished in {time.monotonic() - started:.1f} s", flush=True)
    summary = latest_run(config.metadata_path_resolved, config.pipeline_name)
    print(format_summary(summary), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_modules.local_runner",
        description="Train, validate and push the BERT IMDB sentiment model with TFX's LocalDagRunner.",
        epilog=f"Presets: {describe_presets()}",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="(default demo)")
    parser.add_argument(
        data.DEFAULT_FLAG,
        dest="imdb_archive",
        default=None,
        help=f"IMDB archive (aclImdb_v1.tar.gz) or extracted aclImdb/ folder; default ${data.ENV_VAR}, "
        "then data/, then TensorFlow Datasets (network)",
    )
    parser.add_argument("--verbose", action="store_true", help="show TFX and Beam INFO logs")
    parser.add_argument(
        "--to-component", default=None, metavar="ID", help="partial run: stop after this component (e.g. Transform)"
    )
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:  # Bad settings, missing data or encoder: say so before any component runs.
        config = config_for(args.preset, **overrides_from_args(args))
        source = prepare_data_source(config, args.imdb_archive)
        encoder = resolve_encoder_for(config)
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run(config, source=source, encoder=encoder, to_component=args.to_component)


if __name__ == "__main__":
    sys.exit(main())
