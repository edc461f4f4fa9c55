"""What every way of running the pipeline on one machine shares: its data source, its encoder, the pipeline itself.

The command line (`local_runner`), the Airflow DAG, the notebook and the benchmarks all build their run from these
functions, so that each resolves data and encoder the same way, before any component runs: a missing dataset or
encoder then stops a run at once with a message instead of minutes later inside a component.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipeline_modules import data
from pipeline_modules.config import PROJECT_ROOT, PipelineConfig

if TYPE_CHECKING:  # the encoder package loads TensorFlow: only when an encoder is resolved
    from pipeline_modules.encoder import ResolvedEncoder

logger = logging.getLogger(__name__)


def prepare_data_source(config: PipelineConfig, explicit: str | None) -> str:
    """The ExampleGen `source` parameter: a generated archive (smoke), a local copy, or TFDS."""
    if config.synthetic_reviews_per_class > 0 and not (explicit or config.imdb_source):
        archive = config.pipeline_root_path / "synthetic-data" / data.ARCHIVE_NAME
        info = data.write_synthetic_archive(
            archive,
            n_per_class=config.synthetic_reviews_per_class,
            seed=config.data_seed,
            max_words=config.max_seq_length,  # short reviews, so the few tokens the smoke model sees carry signal
        )
        logger.info("Generated a synthetic IMDB archive at %s (%s)", archive, info)
        return str(archive)
    source = data.locate_imdb_source(explicit or config.imdb_source or None, project_root=PROJECT_ROOT)
    logger.info("IMDB data: %s", source.describe())
    return source.as_parameter()


def resolve_encoder_for(config: PipelineConfig) -> ResolvedEncoder:
    """The configured encoder as a local TF Hub SavedModel (the offline default is converted once, then cached)."""
    from pipeline_modules.encoder import resolve_encoder

    return resolve_encoder(
        config.encoder_handle or None,
        config.resolved_path(config.encoder_cache_dir),
        num_layers=config.encoder_num_layers or None,
    )


def build_local_pipeline(config: PipelineConfig, *, source: str, encoder: ResolvedEncoder) -> Any:
    """`create_pipeline` with its ML Metadata in SQLite under the pipeline root: how the command line, the Airflow
    DAG and the notebook build the pipeline on one machine."""
    from tfx import v1 as tfx

    from pipeline_modules.pipeline import create_pipeline

    config.pipeline_root_path.mkdir(parents=True, exist_ok=True)
    return create_pipeline(
        config,
        imdb_source=source,
        encoder=encoder,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(config.metadata_path_resolved)
        ),
    )


def components_to_run(pipeline: Any, to_component: str | None) -> set[str]:
    """Every component's id, or `to_component`'s and those of all components upstream of it (a partial run)."""
    by_id = {c.id: c for c in pipeline.components}
    if not to_component:
        return set(by_id)
    wanted: set[str] = set()
    frontier = [to_component]
    while frontier:
        node = frontier.pop()
        if node not in wanted:
            wanted.add(node)
            frontier.extend(upstream.id for upstream in by_id[node].upstream_nodes)
    return wanted
