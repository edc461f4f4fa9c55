"""The Airflow DAG file, loaded the way Airflow loads it (optional extra: skipped unless apache-airflow is installed).

Install it with `pip install -c stacks/locks/tfx116.in -r requirements-airflow.txt`; see that file for why the pins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_modules.config import PROJECT_ROOT, config_for

DAG_FILE = PROJECT_ROOT / "pipeline_modules" / "airflow_dag.py"
ENV_VAR = "BERT_IMDB_AIRFLOW_ARGS"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private AIRFLOW_HOME, set before Airflow is first imported (it reads its configuration at import)."""
    home = tmp_path_factory.mktemp("airflow-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", str(home))
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        pytest.importorskip(
            "airflow", reason="optional: pip install -c stacks/locks/tfx116.in -r requirements-airflow.txt"
        )
        yield home


def _dag_bag(tmp_path: Path, flags: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Airflow's own loader over a dags folder holding a link to the module, as the README tells users to set up."""
    from airflow.models import DagBag

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "bert_imdb_dag.py").symlink_to(DAG_FILE)
    monkeypatch.setenv(ENV_VAR, flags)
    return DagBag(dag_folder=str(dags), include_examples=False)


def test_airflow_loads_one_task_per_component_with_the_pipeline_s_edges(
    airflow_home: Path, smoke_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_modules.pipeline import create_pipeline

    root = tmp_path / "root"
    flags = (
        f"--preset smoke --pipeline-root {root} --serving-model-dir {tmp_path / 'serving'} "
        f"--encoder-handle {smoke_encoder.path} --encoder-num-layers 0 --schedule @weekly"
    )
    bag = _dag_bag(tmp_path, flags, monkeypatch)
    assert bag.import_errors == {}
    config = config_for("smoke")
    dag = bag.dags[config.pipeline_name]
    expected = create_pipeline(
        config_for("smoke", pipeline_root=str(root)),
        imdb_source=str(root / "synthetic-data" / "aclImdb_v1.tar.gz"),
        encoder=smoke_encoder,
    )
    assert set(dag.task_ids) == {component.id for component in expected.components}
    for component in expected.components:
        assert dag.get_task(component.id).upstream_task_ids == {node.id for node in component.upstream_nodes}
    assert dag.schedule_interval == "@weekly" and dag.catchup is False and dag.max_active_runs == 1
    assert (root / "synthetic-data" / "aclImdb_v1.tar.gz").is_file()  # resolved at parse time, as the local runner


def test_bad_flags_are_an_import_error_not_an_exit(
    airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = _dag_bag(tmp_path, "--preset smoke --max-seq-length many", monkeypatch)
    assert not bag.dags
    (error,) = bag.import_errors.values()
    assert ENV_VAR in error and "--max-seq-length" in error


def test_the_data_components_run_as_airflow_tasks(
    airflow_home: Path, smoke_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real DAG run through Airflow's scheduler-less `dag.test()`, up to the anomalies gate (the training steps are
    covered by the LocalDagRunner smoke test; the launcher is the same)."""
    from airflow.utils import db

    db.resetdb()  # Airflow's metadata database (SQLite in the private AIRFLOW_HOME), which dag.test() records in
    root = tmp_path / "root"
    flags = (
        f"--preset smoke --pipeline-root {root} --serving-model-dir {tmp_path / 'serving'} "
        f"--encoder-handle {smoke_encoder.path} --encoder-num-layers 0"
    )
    dag = _dag_bag(tmp_path, flags, monkeypatch).dags[config_for("smoke").pipeline_name]
    data_steps = ["ImdbExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "AnomaliesGate"]
    run = dag.partial_subset(task_ids_or_regex=data_steps, include_upstream=True, include_downstream=False).test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(data_steps, "success")
    splits = {path.name for path in (root / "ImdbExampleGen" / "examples").glob("*/Split-*")}
    assert splits == {"Split-train", "Split-eval"}
    assert (root / "metadata.sqlite").is_file() and not (root / "Transform").exists()
