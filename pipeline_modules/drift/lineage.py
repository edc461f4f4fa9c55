"""Finds the training statistics of a served model version through ML Metadata.

The Pusher records each version it pushes as a PushedModel artifact (``pushed_version``, ``pushed_destination``).
Walking that artifact's lineage upwards (Pusher <- Trainer <- Transform <- ExampleGen) gives the Examples it was
trained on; the ExampleStatistics that StatisticsGen computed from those Examples (output key ``statistics``, not
Transform's pre/post-transform statistics) are the baseline, and the Schema imported for the run is the schema. This
stays right when a later run, or a cached one, produced other statistics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

_OUTPUTS = (2, 4)  # Event.DECLARED_OUTPUT, Event.OUTPUT
_INPUTS = (1, 3)  # Event.DECLARED_INPUT, Event.INPUT


class LineageError(LookupError):
    """ML Metadata has no pushed model of that version, or no statistics behind it."""


@dataclasses.dataclass(frozen=True)
class TrainingInputs:
    version: int
    pushed_destination: str
    statistics_uri: str
    schema_uri: str | None  # None: the run imported no schema (the caller falls back to the curated one)


def _store(metadata_path: Path) -> Any:
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as _pb2

    metadata_store_pb2: Any = _pb2  # generated protobuf classes: invisible to mypy

    if not metadata_path.is_file():
        raise LineageError(f"no ML Metadata at {metadata_path} (run the pipeline first, or pass --statistics)")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _custom(artifact: Any, key: str) -> str:
    if key not in artifact.custom_properties:
        return ""
    value = artifact.custom_properties[key]
    return str(value.int_value) if value.HasField("int_value") else value.string_value


def _key(event: Any) -> str:
    steps = event.path.steps
    return steps[0].key if steps and steps[0].HasField("key") else ""


def pushed_versions(store: Any) -> dict[int, Any]:
    """Every version the Pusher pushed, newest artifact last."""
    found: dict[int, Any] = {}
    for artifact in sorted(store.get_artifacts_by_type("PushedModel"), key=lambda a: a.id):
        version = _custom(artifact, "pushed_version")
        if _custom(artifact, "pushed") == "1" and version.isdigit():
            found[int(version)] = artifact
    return found


def _ancestors(store: Any, artifact_id: int) -> set[int]:
    seen, frontier = {artifact_id}, [artifact_id]
    while frontier:
        producers = {e.execution_id for e in store.get_events_by_artifact_ids(frontier) if e.type in _OUTPUTS}
        inputs = store.get_events_by_execution_ids(list(producers)) if producers else []
        frontier = [e.artifact_id for e in inputs if e.type in _INPUTS and e.artifact_id not in seen]
        seen.update(frontier)
    return seen


def training_inputs(metadata_path: str | Path, version: int, model_name: str = "") -> TrainingInputs:
    """The statistics and schema behind pushed ``version`` (of ``model_name``, when the push path names it)."""
    store = _store(Path(metadata_path))
    pushed = pushed_versions(store)
    if model_name:
        named = {v: a for v, a in pushed.items() if Path(_custom(a, "pushed_destination")).parent.name == model_name}
        pushed = named or pushed  # a server may serve the model under another name than its folder
    if version not in pushed:
        known = ", ".join(map(str, sorted(pushed))) or "none"
        raise LineageError(f"unknown model version {version}: versions pushed according to {metadata_path}: {known}")
    artifact = pushed[version]
    types = {t.id: t.name for t in store.get_artifact_types()}
    ancestors = store.get_artifacts_by_id(sorted(_ancestors(store, artifact.id)))
    examples = [a.id for a in ancestors if types.get(a.type_id) == "Examples"]
    consumers = {e.execution_id for e in store.get_events_by_artifact_ids(examples) if e.type in _INPUTS}
    statistics: list[int] = []
    schemas: list[int] = []
    for event in store.get_events_by_execution_ids(sorted(consumers)) if consumers else []:
        if event.type in _OUTPUTS and _key(event) == "statistics":
            statistics.append(event.artifact_id)
    for a in ancestors:
        if types.get(a.type_id) == "Schema":
            producers = [e for e in store.get_events_by_artifact_ids([a.id]) if e.type in _OUTPUTS]
            if any(_key(e) == "schema" for e in producers):
                schemas.append(a.id)
    stats = [a for a in store.get_artifacts_by_id(statistics) if types.get(a.type_id) == "ExampleStatistics"]
    if not stats:
        raise LineageError(
            f"version {version} was pushed, but ML Metadata records no StatisticsGen output for the examples it was "
            "trained on; pass --statistics"
        )
    schema = max(store.get_artifacts_by_id(schemas), key=lambda a: a.id) if schemas else None
    return TrainingInputs(
        version=version,
        pushed_destination=_custom(artifact, "pushed_destination"),
        statistics_uri=max(stats, key=lambda a: a.id).uri,
        schema_uri=None if schema is None else schema.uri,
    )
