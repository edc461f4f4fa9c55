"""What a finished pipeline run produced, read back from ML Metadata: timings, metrics, blessing, pushed model.

The runner prints this at the end of a run, benchmarks write it to JSON, and the notebook shows it; reading it from
MLMD (rather than from the runner's memory) means it also works for a run made by another process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml_metadata.proto import metadata_store_pb2 as _metadata_store_pb2
from tfx.orchestration import metadata

# Generated protobuf code makes its classes at import time, where mypy cannot see them.
metadata_store_pb2: Any = _metadata_store_pb2

_PIPELINE_RUN_CONTEXT = "pipeline_run"


@dataclasses.dataclass
class ComponentRun:
    component_id: str
    state: str
    wall_s: float


@dataclasses.dataclass
class RunSummary:
    run_id: str
    components: list[ComponentRun]
    artifacts: dict[str, list[Any]]  # MLMD type name -> artifacts of this run
    eval_metrics: dict[str, dict[str, float]]  # slice -> metric -> value
    blessed: bool | None
    infra_blessed: bool | None
    infra_reason: str | None
    pushed: bool | None
    pushed_destination: str | None
    # What served `serving_default` in InfraValidator's server ("onnxruntime fp32", "tensorflow"; None: not recorded).
    serving_engine: str | None = None

    @property
    def total_wall_s(self) -> float:
        return sum(c.wall_s for c in self.components)


def _custom(artifact: Any, key: str) -> Any:
    if key not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[key]
    return value.int_value if value.HasField("int_value") else value.string_value


def _component_id(execution: Any, node_contexts: Mapping[int, str], store: Any) -> str:
    for context in store.get_contexts_by_execution(execution.id):
        if context.id in node_contexts:
            return node_contexts[context.id]
    return str(execution.type)


def eval_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """Flatten TFMA's metrics to {slice name: {metric name: value}}; the overall slice is called "Overall"."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    flat: dict[str, dict[str, float]] = {}
    for slice_key, per_output in result.slicing_metrics:
        name = " & ".join(f"{k}={v}" for k, v in slice_key) if slice_key else "Overall"
        values = flat.setdefault(name, {})
        for per_sub_key in per_output.values():
            for metrics in per_sub_key.values():
                for metric, value in metrics.items():
                    if isinstance(value, dict) and "doubleValue" in value:
                        values[metric] = float(value["doubleValue"])
    return flat


def latest_run(metadata_path: str | Path, pipeline_name: str) -> RunSummary:
    """The newest run of `pipeline_name` recorded in the SQLite MLMD at `metadata_path`."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    with metadata.Metadata(config) as m:
        store = m.store
        runs = [c for c in store.get_contexts_by_type(_PIPELINE_RUN_CONTEXT)]
        if not runs:
            raise LookupError(f"No pipeline run recorded in {metadata_path}")
        run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
        prefix = f"{pipeline_name}."
        node_contexts = {
            c.id: c.name[len(prefix) :] for c in store.get_contexts_by_type("node") if c.name.startswith(prefix)
        }
        executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
        components = [
            ComponentRun(
                component_id=_component_id(e, node_contexts, store),
                state=metadata_store_pb2.Execution.State.Name(e.last_known_state),
                wall_s=max(e.last_update_time_since_epoch - e.create_time_since_epoch, 0) / 1000.0,
            )
            for e in executions
        ]
        type_names = {t.id: t.name for t in store.get_artifact_types()}
        artifacts: dict[str, list[Any]] = {}
        for artifact in store.get_artifacts_by_context(run.id):
            artifacts.setdefault(type_names.get(artifact.type_id, str(artifact.type_id)), []).append(artifact)

    def newest(type_name: str) -> Any | None:
        found = artifacts.get(type_name) or []
        return max(found, key=lambda a: a.id) if found else None

    evaluation, blessing, pushed = newest("ModelEvaluation"), newest("ModelBlessing"), newest("PushedModel")
    infra = newest("InfraBlessing")
    metrics = eval_metrics(evaluation.uri) if evaluation is not None and Path(evaluation.uri).exists() else {}
    return RunSummary(
        run_id=run.name,
        components=components,
        artifacts=artifacts,
        eval_metrics=metrics,
        blessed=None if blessing is None else bool(_custom(blessing, "blessed")),
        infra_blessed=None if infra is None else bool(_custom(infra, "blessed")),
        infra_reason=None if infra is None else _custom(infra, "reason"),
        pushed=None if pushed is None else bool(_custom(pushed, "pushed")),
        pushed_destination=None if pushed is None else (_custom(pushed, "pushed_destination") or None),
        serving_engine=None if infra is None else (_custom(infra, "serving_engine") or None),
    )


def format_summary(summary: RunSummary, metric_names: tuple[str, ...] = ("binary_accuracy", "auc")) -> str:
    lines = [f"Run {summary.run_id}"]
    lines += [f"  {c.component_id:<22} {c.state:<9} {c.wall_s:8.1f} s" for c in summary.components]
    lines.append(f"  {'total':<22} {'':<9} {summary.total_wall_s:8.1f} s")
    overall = summary.eval_metrics.get("Overall", {})
    if overall:
        shown = ", ".join(f"{k} {overall[k]:.4f}" for k in (*metric_names, "example_count") if k in overall)
        lines.append(f"Eval metrics (Overall): {shown}")
    if summary.blessed is not None:
        verdict = "yes" if summary.blessed else "no (below the accuracy bar or worse than the latest blessed model)"
        lines.append(f"Blessed by Evaluator: {verdict}")
    if summary.infra_blessed is not None:
        verdict = "yes" if summary.infra_blessed else "no"
        lines.append(
            f"Blessed by InfraValidator: {verdict}" + (f" ({summary.infra_reason})" if summary.infra_reason else "")
        )
    if summary.serving_engine:
        lines.append(f"Serving engine (serving_default, as InfraValidator served it): {summary.serving_engine}")
    if summary.pushed:
        lines.append(f"Pushed model: {summary.pushed_destination}")
    elif summary.pushed is not None:
        lines.append("Pushed model: none (a blessing is missing, see above)")
    return "\n".join(lines)
