"""The engines of the peers benchmark (`benchmarks.peers`): the model exported the product's way, and each engine
that runs it from text to probability (ours in-process, TensorFlow, ONNX Runtime with Hugging Face `tokenizers`, the
model server over REST, gRPC and `wrk`)."""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.serve_clients import wrk_post
from benchmarks.texts import SENTENCES

MODEL = "sentiment"
SIGNATURE, TEXT, PROBABILITY = "serving_default", "text", "probability"
Predict = Callable[[list[str]], Any]


class SelfTimed:
    """A client that times its own calls (`wrk`): run once per round, its median call is the round's figure."""

    def __init__(self, run: Callable[[], float]):
        self.run = run  # seconds of the median call; raises when the client could not measure


# --- the model, exported the product's way ---------------------------------------------------------------------------


def build_and_export(config: Any, encoder: Any, workdir: Path) -> tuple[Any, str]:
    """`build_model` with a fixed head, and its export (Transform graph + `export_serving_model`, with the ONNX
    engine the configuration's `serving_engine` asks for, as the Trainer exports it) under workdir."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the Transform graph's tokenizer ops)
    from tensorflow_transform.output_wrapper import TFTransformOutput
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from pipeline_modules import features
    from pipeline_modules.settings import TrainerSettings, TransformSettings
    from pipeline_modules.trainer.export import export_serving_model
    from pipeline_modules.trainer.model import build_model
    from pipeline_modules.transform_module import preprocessing_fn

    model = build_model(encoder.path, pooling=config.pooling, dropout=0.0, in_process=True)
    head = model.get_layer("logit")
    rng = np.random.RandomState(7)
    head.kernel.assign(rng.standard_normal(head.kernel.shape).astype(np.float32) * 0.3)
    head.bias.assign(np.zeros([1], np.float32))
    tft_beam: Any = importlib.import_module("tensorflow_transform.beam")
    raw_spec = {
        features.REVIEW_KEY: tf.io.FixedLenFeature([], tf.string),
        features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    custom_config = TransformSettings.from_config(config, encoder).to_custom_config()
    out = workdir / "transform_output"
    rows = [{features.REVIEW_KEY: b"good", features.LABEL_KEY: 1}, {features.REVIEW_KEY: b"bad", features.LABEL_KEY: 0}]
    with tft_beam.Context(temp_dir=str(workdir / "tft-tmp"), force_tf_compat_v1=False):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(
            functools.partial(preprocessing_fn, custom_config=custom_config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(out))
    metadata_io.write_metadata(metadata, str(out / TFTransformOutput.RAW_METADATA_DIR))
    export_dir = workdir / MODEL / "1"
    from pipeline_modules.trainer.onnx_export import EngineExport

    engine = EngineExport.from_settings(TrainerSettings.from_config(config, encoder))  # as run_fn builds it
    export_serving_model(
        model, TFTransformOutput(str(out)), config.serving_length_buckets, str(export_dir), engine=engine
    )
    return model, str(workdir / MODEL)


# --- the engines: texts in, probabilities out -------------------------------------------------------------------------


def ours(base_path: str, max_call_tokens: int | None = None) -> tuple[Predict, Any]:
    """`ServableModel` with the server's default options (`max_call_tokens`: another `--onnx_max_call_tokens`)."""
    import dataclasses

    import numpy as np

    from model_server.model import ServableModel, import_op_libraries
    from model_server.onnx_engine import ONNX_AUTO

    import_op_libraries()
    servable = ServableModel(MODEL, 1, os.path.join(base_path, "1"))
    onnx = ONNX_AUTO if max_call_tokens is None else dataclasses.replace(ONNX_AUTO, max_call_tokens=max_call_tokens)
    servable.load(warmup=True, warmup_batch_sizes=(1, 32), onnx=onnx)

    def predict(texts: list[str]) -> Any:
        batch = np.empty(len(texts), dtype=object)
        batch[:] = [t.encode() for t in texts]
        return servable.predict(SIGNATURE, {TEXT: batch})[PROBABILITY]

    return predict, servable


def baseline_tf(base_path: str) -> Predict:
    import tensorflow as tf

    signature = tf.saved_model.load(os.path.join(base_path, "1")).signatures[SIGNATURE]
    return lambda texts: signature(**{TEXT: tf.constant(texts)})[PROBABILITY].numpy()


def ort_engine(onnx_model: Any, vocab_file: str, lower_case: bool, max_length: int) -> Predict:
    """ONNX Runtime, default session options (all graph optimizations), fed by Hugging Face `tokenizers`."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(vocab_file, lowercase=lower_case)
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding()  # to the batch's longest
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def predict(texts: list[str]) -> Any:
        encoded = tokenizer.encode_batch(texts)
        feed = {
            "input_word_ids": np.array([e.ids for e in encoded], np.int64),
            "input_mask": np.array([e.attention_mask for e in encoded], np.int64),
            "input_type_ids": np.array([e.type_ids for e in encoded], np.int64),
        }
        return session.run([PROBABILITY], feed)[0]

    return predict


def serve(base_path: str, workdir: Path, *, batching: bool) -> Any:
    """The model server on the export; with batching, batches of up to 32 formed within 2 ms (for concurrency 32)."""
    from model_server.process import start_server

    args = ["--access_log_path="]
    if batching:
        params = workdir / "batching.txt"
        params.write_text("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 2000 }\n")
        args += ["--enable_batching", f"--batching_parameters_file={params}"]
    server = start_server(
        model_name=MODEL, model_base_path=base_path, extra_args=args, log_path=str(workdir / "server.log")
    )
    server.wait_for_model(MODEL, timeout=600)
    return server


def wrk_c1(server: Any, workdir: Path, seconds: int) -> SelfTimed:
    """REST at concurrency 1 from `wrk` (C, one connection): the server's latency without a Python client's JSON and
    HTTP work on the same two cores."""

    def run() -> float:
        measured = wrk_post(server.rest_url, MODEL, seconds, SENTENCES[0], workdir, connections=1)
        if not measured["measured"] or measured["non_2xx"] or measured["p50_ms"] is None:
            raise RuntimeError(f"wrk at concurrency 1 failed: {measured['output_tail']}")
        return float(measured["p50_ms"]) / 1000

    return SelfTimed(run)


def remote(kind: str, server: Any) -> tuple[Predict, Any]:
    """One keep-alive REST client or one gRPC channel, a request of one sentence at a time."""
    from model_server.client import GrpcClient, RestClient

    if kind == "rest":
        client: Any = RestClient(server.rest_url, timeout=120)
        path = f"/v1/models/{MODEL}:predict"

        def call(texts: list[str]) -> Any:
            status, _, data = client.request("POST", path, json.dumps({"instances": texts}).encode())
            if status != 200:
                raise RuntimeError(f"REST {status}: {data[:200]!r}")
            return json.loads(data)["predictions"]

        return call, client
    client = GrpcClient(server.grpc_target, timeout=120)

    def predict(texts: list[str]) -> Any:
        request = client.predict_request(MODEL, {TEXT: [t.encode() for t in texts]}, SIGNATURE)
        return client.prediction.Predict(request, timeout=120).outputs[PROBABILITY].float_val

    return predict, client


def int8_export(base_path: str, workdir: Path) -> tuple[str | None, str]:
    """A copy of the export whose manifest serves the Trainer's int8 graph (`onnx_export.int8_graph`, per output
    channel) of the same fp32 graph: `ours_int8`, our served path as it runs when the Trainer's int8 gate passes.

    Speed only: the head is random, so there is no accuracy to gate on here. The manifest says so (accuracy on 0
    examples) and its tolerance admits any probability, so that the agreement is measured by the benchmark
    (`max_abs_probability_difference_vs_ours`) instead of refused at load. Accuracy is `engine_accuracy --quantize`'s
    question, on a trained model and the whole test split.
    """
    import dataclasses
    import shutil

    import onnx

    from model_server.onnx_manifest import read_onnx_manifest, write_onnx_manifest
    from pipeline_modules.trainer.onnx_export import int8_graph

    target = workdir / f"{MODEL}_int8"
    shutil.copytree(os.path.join(base_path, "1"), target / "1")
    manifest = read_onnx_manifest(str(target / "1"))
    if SIGNATURE not in manifest:
        return None, f"the export has no ONNX graph for {SIGNATURE} to quantize"
    spec = manifest[SIGNATURE]
    graph_path = target / "1" / spec.graph
    int8, why_not = int8_graph(onnx.load(str(graph_path)))
    if int8 is None:
        return None, why_not
    onnx.save(int8, str(graph_path))
    accuracy = {"fp32": 0.0, "int8": 0.0, "examples": 0.0}  # not measured: a random head
    spec = dataclasses.replace(spec, precision="int8", tolerance=1.0, accuracy=accuracy, measured={})
    write_onnx_manifest(str(target / "1"), {SIGNATURE: spec})
    return str(target), ""
