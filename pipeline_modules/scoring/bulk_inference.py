"""TFX's BulkInferrer as an optional last step: the blessed model scores a split, results as tf.Examples.

Off by default (``--bulk-inference true`` turns it on). It scores the eval split of the run's own ExampleGen, or a
split of an Examples artifact made elsewhere (``--bulk-inference-examples-uri``: a folder with ``Split-<name>/``
TFRecords of tf.Examples carrying ``review``, as any ExampleGen writes them), through the model's ``from_examples``
signature, and only once Evaluator has blessed the model (BulkInferrer writes nothing for a model that was not).
Each output example is the input one with two features added: ``probability`` and ``predicted_label``; not
``label``, which the eval split already has (the true label) and which BulkInferrer would overwrite.

Why an executor of our own: tfx_bsl's RunInference (TFX 1.16 and 1.21) splits a predict signature's outputs row by
row and reads each row's ``.dtype``, which a rank-1 string output (our ``label``) has not: the stock BulkInferrer
stops with "'bytes' object has no attribute 'dtype'". `Executor` therefore scores through a thin wrapper SavedModel
(written to the component's temporary folder) whose ``from_examples`` returns string outputs as ``[batch, 1]``;
the model itself and what it answers are unchanged.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tfx import v1 as tfx
from tfx.components.bulk_inferrer import executor as bulk_inferrer_executor
from tfx.dsl.components.base import executor_spec

from pipeline_modules import features
from pipeline_modules.config import PipelineConfig

PREDICTED_LABEL_COLUMN = "predicted_label"
BULK_INFERRER_ID = "BulkInferrer"
IMPORTER_ID = "BulkInferenceExamplesImporter"


def write_column_wrapper(model_path: str, export_dir: str, signature_name: str) -> str:
    """A SavedModel whose `signature_name` is the model's, with rank-1 string outputs as [batch, 1]."""
    import tensorflow as tf

    from model_server.model import import_op_libraries

    import_op_libraries()  # the tokenizer's ops, before the model loads
    loaded = tf.saved_model.load(model_path)
    signature = loaded.signatures[signature_name]
    (input_name, spec), *others = signature.structured_input_signature[1].items()
    if others:
        raise ValueError(f"signature {signature_name!r} takes more than one input")

    class ColumnOutputs(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = loaded

        @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=input_name)])  # type: ignore[untyped-decorator]
        def serve(self, inputs: Any) -> dict[str, Any]:
            outputs = self.model.signatures[signature_name](**{input_name: inputs})
            return {k: v[:, None] if v.dtype == tf.string and v.shape.rank == 1 else v for k, v in outputs.items()}

    wrapper = ColumnOutputs()
    tf.saved_model.save(wrapper, export_dir, signatures={signature_name: wrapper.serve.get_concrete_function()})
    return export_dir


class Executor(bulk_inferrer_executor.Executor):  # type: ignore[misc]
    """TFX's BulkInferrer executor, scoring through `write_column_wrapper`'s wrapper of the model."""

    def _get_inference_spec(self, model_path: str, exec_properties: dict[str, Any]) -> Any:
        spec = super()._get_inference_spec(model_path, exec_properties)
        saved_model = spec.saved_model_spec
        signature = saved_model.signature_name[0] if saved_model.signature_name else features.SERVING_SIGNATURE
        wrapper = os.path.join(self._get_tmp_dir(), "column_outputs_model")
        saved_model.model_path = write_column_wrapper(model_path, wrapper, signature)
        return spec


class BulkInferrer(tfx.components.BulkInferrer):  # type: ignore[misc]
    """The stock component with `Executor` (same inputs, outputs and parameters)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)


def output_example_spec() -> Any:
    """The model's outputs, as the features BulkInferrer adds to every example it scores."""
    columns = tfx.proto.PredictOutput(
        output_columns=[
            tfx.proto.PredictOutputCol(
                output_key=features.PROBABILITY_OUTPUT, output_column=features.PROBABILITY_OUTPUT
            ),
            tfx.proto.PredictOutputCol(output_key=features.LABEL_OUTPUT, output_column=PREDICTED_LABEL_COLUMN),
        ]
    )
    return tfx.proto.OutputExampleSpec(output_columns_spec=[tfx.proto.OutputColumnsSpec(predict_output=columns)])


def bulk_inference_components(config: PipelineConfig, examples: Any, model: Any, model_blessing: Any) -> list[Any]:
    """Nothing when `config.bulk_inference` is off; else [Importer,] BulkInferrer wired to the given channels."""
    if not config.bulk_inference:
        return []
    components: list[Any] = []
    if config.bulk_inference_examples_uri:
        importer = tfx.dsl.Importer(
            source_uri=config.resolved_uri(config.bulk_inference_examples_uri),
            artifact_type=tfx.types.standard_artifacts.Examples,
            properties={"split_names": json.dumps([config.bulk_inference_split])},
        ).with_id(IMPORTER_ID)
        components.append(importer)
        examples = importer.outputs["result"]
    components.append(
        BulkInferrer(
            examples=examples,
            model=model,
            model_blessing=model_blessing,
            data_spec=tfx.proto.DataSpec(example_splits=[config.bulk_inference_split]),
            model_spec=tfx.proto.ModelSpec(model_signature_name=[features.EXAMPLES_SIGNATURE]),
            output_example_spec=output_example_spec(),
        ).with_id(BULK_INFERRER_ID)
    )
    return components
