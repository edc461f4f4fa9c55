"""The pipeline as an Apache Airflow DAG, through TFX's AirflowDagRunner (optional: requirements-airflow.txt).

Airflow finds DAGs by importing each file of its dags folder and keeping the module-level DAG objects, so importing
this module builds one, `DAG`, from the local runner's flags in an environment variable:

    export BERT_IMDB_AIRFLOW_ARGS="--preset demo --imdb-source /data/aclImdb_v1.tar.gz"
    ln -s "$PWD/pipeline_modules/airflow_dag.py" "$AIRFLOW_HOME/dags/bert_imdb_dag.py"

with this project installed (`pip install -e .`) and TF_USE_LEGACY_KERAS=1 wherever Airflow parses or runs it. Data
and encoder are resolved by `pipeline_modules.environment`, as for the local runner, each time the file is parsed (the
encoder conversion is cached).
Every component is one Airflow task that runs TFX's launcher in the worker, against the same pipeline root and
ML Metadata store (SQLite) as the local runner.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
from collections.abc import Sequence
from typing import Any

from pipeline_modules.config import PRESETS, PipelineConfig, add_config_arguments, config_for, overrides_from_args
from pipeline_modules.encoder import ResolvedEncoder
from pipeline_modules.environment import build_local_pipeline, prepare_data_source, resolve_encoder_for

ENV_VAR = "BERT_IMDB_AIRFLOW_ARGS"
# Only a lower bound for runs: with catchup off, Airflow never back-fills the intervals since then.
START_DATE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def build_dag(config: PipelineConfig, *, source: str, encoder: ResolvedEncoder, schedule: str | None = None) -> Any:
    """An Airflow DAG (id = the pipeline name) with one task per component of `create_pipeline`'s pipeline."""
    # Imported here, after pipeline_modules (which chooses Keras 2 before TensorFlow loads), not at the top.
    from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner, AirflowPipelineConfig

    pipeline = build_local_pipeline(config, source=source, encoder=encoder)
    dag_config = {
        "schedule": schedule,
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,  # runs share one SQLite metadata store and one serving directory
        "tags": ["tfx", config.preset],
    }
    return AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_config)).run(pipeline)


class _Parser(argparse.ArgumentParser):
    """Bad flags raise, so that Airflow lists an import error instead of a parser exiting inside its scheduler."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{ENV_VAR}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=ENV_VAR, description="The local runner's configuration flags, for the Airflow DAG.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--schedule", default=None, help="cron expression or preset (@daily); default: manual runs")
    add_config_arguments(parser)
    return parser


def dag_from_args(argv: Sequence[str]) -> Any:
    """The DAG for these flags, with data and encoder resolved as `python -m pipeline_modules.local_runner` does."""
    args = _parser().parse_args(list(argv))
    config = config_for(args.preset, **overrides_from_args(args))
    return build_dag(
        config, source=prepare_data_source(config, None), encoder=resolve_encoder_for(config), schedule=args.schedule
    )


DAG = dag_from_args(shlex.split(os.environ.get(ENV_VAR, "")))
