"""Infrastructure validation without Docker: serve the candidate with this project's model server and query it.

TFX's stock InfraValidator starts TensorFlow Serving in Docker or Kubernetes, which neither Colab nor these machines
have (tensorflow/tfx issues 2912, 5485, 5512). This component does the same job with `python -m model_server`, the
drop-in server the model will be served by: it starts it as a separate process on a copy of the candidate, waits
until the model is AVAILABLE (with a load deadline), sends real eval reviews over REST and gRPC exactly as clients
do (Predict on text, and TF Serving's Classify API on tf.Examples), checks every answer against the contract and
against in-process scoring, stops the server, and writes a standard `InfraBlessing` (with the model plus TF Serving
warm-up requests, when asked, for Pusher to push).
"""

import glob
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples, InfraBlessing, Model
from tfx.utils import io_utils, path_utils

from pipeline_modules import features
from pipeline_modules.components import serving_engines

logger = logging.getLogger(__name__)

BLESSED_KEY = "blessed"  # the custom properties stock InfraValidator sets, which Pusher reads
MODEL_FLAG_KEY = "has_model"
REPORT_FILE = "infra_validation.json"
_SERVED_VERSION = 1
CLASSIFY_TOLERANCE = 1e-6  # Classify's positive score against Predict's probability: the same graph, the same server


class InfraValidationFailed(Exception):
    """A check failed; the message says which and why."""


def eval_reviews(examples: Examples, count: int, split: str = "eval") -> list[str]:
    """The first `count` reviews of a split, as clients would send them."""
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    dataset = tf.data.TFRecordDataset(sorted(glob.glob(pattern)), compression_type="GZIP").take(count)
    reviews = []
    for record in dataset:
        example = tf.train.Example.FromString(record.numpy())
        reviews.append(example.features.feature[features.REVIEW_KEY].bytes_list.value[0].decode("utf-8"))
    if not reviews:
        raise InfraValidationFailed(f"no examples found in split {split!r} of {examples.uri}")
    return reviews


def warmup_requests(model_name: str, reviews: Sequence[str]) -> list[prediction_log_pb2.PredictionLog]:
    """TF Serving warm-up records: one `serving_default` request per batch size a client is likely to send."""
    logs = []
    for size in sorted({1, min(len(reviews), 8), len(reviews)}):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=features.SERVING_SIGNATURE)
        )
        request.inputs[features.TEXT_INPUT].CopyFrom(tf.make_tensor_proto(list(reviews[:size]), dtype=tf.string))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def _check_answer(transport: str, rows: list[dict[str, Any]], expected: np.ndarray, tolerance: float) -> list[str]:
    """Contract checks on one transport's rows ({probability, label} per review)."""
    problems = []
    try:
        probability = _probabilities(rows)
        labels = [row[features.LABEL_OUTPUT] for row in rows]
    except (KeyError, TypeError, ValueError) as error:
        return [f"{transport}: answer does not follow the contract ({error!r}): {str(rows)[:300]}"]
    if probability.shape != expected.shape or len(labels) != len(expected):
        return [f"{transport}: {len(labels)} labels / shape {probability.shape} for {len(expected)} reviews"]
    if not np.all((probability >= 0.0) & (probability <= 1.0)):
        problems.append(f"{transport}: probabilities outside [0, 1]: {probability.tolist()}")
    if not set(labels) <= {features.POSITIVE, features.NEGATIVE}:
        problems.append(f"{transport}: unexpected labels {sorted(set(labels))}")
    wrong = [
        i
        for i, (p, label) in enumerate(zip(probability, labels, strict=True))
        if label != (features.POSITIVE if p >= 0.5 else features.NEGATIVE)
    ]
    if wrong:
        problems.append(f"{transport}: labels disagree with probabilities at rows {wrong}")
    gap = float(np.max(np.abs(probability - expected)))
    if gap > tolerance:
        problems.append(f"{transport}: differs from in-process scoring by {gap:.2e} (tolerance {tolerance:.0e})")
    return problems


def _probabilities(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray([row[features.PROBABILITY_OUTPUT] for row in rows], dtype=np.float64)


def _max_abs_diff(rows: list[dict[str, Any]], expected: np.ndarray) -> float | None:
    """Served vs in-process probabilities (None when the answer is malformed; `_check_answer` says how)."""
    try:
        probability = _probabilities(rows)
    except (KeyError, TypeError, ValueError):
        return None
    return float(np.max(np.abs(probability - expected))) if probability.shape == expected.shape else None


def review_example(review: str) -> tf.train.Example:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[review.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature={features.REVIEW_KEY: feature}))


def _check_classes(transport: str, rows: list[list[tuple[str, float]]], probability: np.ndarray) -> list[str]:
    """Classify's answer: per review [(positive, p), (negative, 1 - p)], p equal to Predict's probability."""
    want = [features.POSITIVE, features.NEGATIVE]
    if len(rows) != len(probability) or any([label for label, _ in row] != want for row in rows):
        return [f"{transport} classify: expected {len(probability)} rows of classes {want}, got {str(rows)[:300]}"]
    scores = np.asarray([[score for _, score in row] for row in rows], dtype=np.float64)
    problems = []
    gap = float(np.max(np.abs(scores[:, 0] - probability)))
    if gap > CLASSIFY_TOLERANCE:
        problems.append(f"{transport} classify: positive scores differ from predict's probability by {gap:.2e}")
    if float(np.max(np.abs(scores.sum(axis=1) - 1.0))) > CLASSIFY_TOLERANCE:
        problems.append(f"{transport} classify: scores do not sum to 1: {scores.tolist()}")
    return problems


def _classify_problems(
    transport: str, classify: Callable[[], list[list[tuple[str, float]]]], probability: np.ndarray
) -> list[str]:
    """One transport's Classify answer checked; a refused call is one more problem, reported with the others."""
    try:
        rows = classify()
    except Exception as error:  # noqa: BLE001 - the server's own words go into the report
        details = error.details() if hasattr(error, "details") else str(error)
        return [f"{transport} classify failed: {details}"]
    return _check_classes(transport, rows, probability)


def _rest_classify(rest: Any, model_name: str, reviews: Sequence[str]) -> list[list[tuple[str, float]]]:
    body = {
        "signature_name": features.CLASSIFY_SIGNATURE,
        "examples": [{features.REVIEW_KEY: review} for review in reviews],
    }
    status, _, data = rest.request("POST", f"/v1/models/{model_name}:classify", json.dumps(body).encode("utf-8"))
    doc = json.loads(data)
    if status != 200:
        raise InfraValidationFailed(f"answered {status}: {doc.get('error', doc)}")
    return [[(str(label), float(score)) for label, score in row] for row in doc["results"]]


def _grpc_classify(target: str, model_name: str, reviews: Sequence[str]) -> list[list[tuple[str, float]]]:
    import grpc

    request = classification_pb2.ClassificationRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=features.CLASSIFY_SIGNATURE)
    )
    request.input.example_list.examples.extend(review_example(review) for review in reviews)
    with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=60)
    return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]


def validate_with_model_server(
    model_dir: str,
    reviews: Sequence[str],
    *,
    model_name: str,
    load_deadline_s: float,
    tolerance: float,
    workdir: str,
) -> dict[str, Any]:
    """Serve `model_dir` from a fresh server process, query it, and return a report; raise on the first failure."""
    from model_server.process import start_server

    report: dict[str, Any] = {"model_name": model_name, "requests": len(reviews)}
    base_path = os.path.join(workdir, model_name)
    io_utils.copy_dir(model_dir, os.path.join(base_path, str(_SERVED_VERSION)))
    manifest, manifest_error = serving_engines.read_manifest(os.path.join(base_path, str(_SERVED_VERSION)))
    try:
        signature = tf.saved_model.load(model_dir).signatures[features.SERVING_SIGNATURE]
    except (KeyError, OSError, ValueError) as error:
        raise InfraValidationFailed(f"the SavedModel has no usable {features.SERVING_SIGNATURE!r}: {error}") from error
    scored = signature(**{features.TEXT_INPUT: tf.constant(list(reviews))})
    expected = scored[features.PROBABILITY_OUTPUT].numpy().astype(np.float64)

    started = time.monotonic()
    server = start_server(model_name=model_name, model_base_path=base_path, startup_timeout=load_deadline_s)
    try:
        try:
            server.wait_for_model(model_name, timeout=max(load_deadline_s - (time.monotonic() - started), 1.0))
        except (TimeoutError, RuntimeError) as error:
            raise InfraValidationFailed(f"the model server did not make the model available: {error}") from error
        report["load_s"] = round(time.monotonic() - started, 2)
        # The engine per signature, as the server logged it at load: the tolerance is the one of what serves.
        engines = serving_engines.served_engines(
            manifest, server.log_text(), model_name, _SERVED_VERSION, manifest_error
        )
        engines.setdefault(
            features.SERVING_SIGNATURE, {"engine": "tensorflow", "precision": "", "detail": "no ONNX manifest entry"}
        )
        report["engines"] = engines
        serving_tolerance = serving_engines.check_tolerance(engines, features.SERVING_SIGNATURE, tolerance)
        gaps: list[float | None] = []
        problems: list[str] = []
        texts = list(reviews)
        with server.rest_client() as rest:
            metadata = rest.model_metadata(model_name)
            signatures = metadata["metadata"]["signature_def"]["signature_def"]
            for name in (features.SERVING_SIGNATURE, features.EXAMPLES_SIGNATURE, features.CLASSIFY_SIGNATURE):
                if name not in signatures:
                    problems.append(f"metadata: signature {name!r} missing (has {sorted(signatures)})")
            method = signatures.get(features.CLASSIFY_SIGNATURE, {}).get("method_name")
            if method != features.CLASSIFY_METHOD_NAME:
                problems.append(f"metadata: signature {features.CLASSIFY_SIGNATURE!r} has method_name {method!r}")
            rows = rest.predict_texts(
                model_name,
                texts,
                input_name=features.TEXT_INPUT,
                signature_name=features.SERVING_SIGNATURE,
            )
            problems += _check_answer("REST", rows, expected, serving_tolerance)
            gaps.append(_max_abs_diff(rows, expected))
            # One review per call too: the server may send small and large calls to different engines.
            singles = [
                rest.predict_texts(
                    model_name, [text], input_name=features.TEXT_INPUT, signature_name=features.SERVING_SIGNATURE
                )[0]
                for text in texts
            ]
            problems += _check_answer("REST, one review per call", singles, expected, serving_tolerance)
            gaps.append(_max_abs_diff(singles, expected))
            served = _probabilities(rows)
            # Classify runs on TensorFlow: held to Predict's answer if TensorFlow gave it, else to the SavedModel's.
            if not serving_engines.runs_on_tensorflow(engines, features.SERVING_SIGNATURE):
                served = expected
            problems += _classify_problems("REST", lambda: _rest_classify(rest, model_name, texts), served)
        with server.grpc_client() as grpc_client:
            rows = grpc_client.predict_texts(
                model_name,
                texts,
                input_name=features.TEXT_INPUT,
                signature_name=features.SERVING_SIGNATURE,
            )
            problems += _check_answer("gRPC", rows, expected, serving_tolerance)
            gaps.append(_max_abs_diff(rows, expected))
        if all(gap is not None for gap in gaps):
            engines[features.SERVING_SIGNATURE]["max_abs_diff"] = max(gap for gap in gaps if gap is not None)
            engines[features.SERVING_SIGNATURE]["checked_tolerance"] = serving_tolerance
        target = server.grpc_target
        problems += _classify_problems("gRPC", lambda: _grpc_classify(target, model_name, texts), served)
        if problems:
            raise InfraValidationFailed("; ".join(problems))
    except InfraValidationFailed:
        raise
    except Exception as error:  # any client error is a failed validation, with the server's own words
        raise InfraValidationFailed(f"{type(error).__name__}: {error}") from error
    finally:
        exit_code = server.stop()
        report["server_log_tail"] = server.log_text()[-2000:]
    if exit_code != 0:
        raise InfraValidationFailed(f"the model server did not shut down cleanly (exit status {exit_code})")
    report["shutdown_exit_code"] = exit_code
    return report


def record_engines(blessing: Any, report: dict[str, Any]) -> None:
    """The serving engine of `serving_default` (and every signature's, as JSON) in the blessing's custom properties."""
    if "engines" not in report:
        return
    for key, value in serving_engines.blessing_properties(report["engines"], features.SERVING_SIGNATURE).items():
        if isinstance(value, float):
            blessing.set_float_custom_property(key, value)
        else:
            blessing.set_string_custom_property(key, value)


@tfx.dsl.components.component
def ModelServerInfraValidator(  # noqa: N802 - TFX component names are classes
    model: tfx.dsl.components.InputArtifact[Model],
    examples: tfx.dsl.components.InputArtifact[Examples],
    blessing: tfx.dsl.components.OutputArtifact[InfraBlessing],
    model_name: tfx.dsl.components.Parameter[str],
    load_deadline_s: tfx.dsl.components.Parameter[float] = 120.0,
    num_requests: tfx.dsl.components.Parameter[int] = 8,
    tolerance: tfx.dsl.components.Parameter[float] = 1e-4,
    make_warmup: tfx.dsl.components.Parameter[bool] = True,
) -> None:
    """Blesses the candidate only when this project's model server loads it and answers correctly."""
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    reviews = eval_reviews(examples, num_requests)
    workdir = tempfile.mkdtemp(prefix="infra-validation-")
    try:
        report = validate_with_model_server(
            model_dir,
            reviews,
            model_name=model_name,
            load_deadline_s=load_deadline_s,
            tolerance=tolerance,
            workdir=workdir,
        )
        blessed, reason = True, f"served and answered {len(reviews)} reviews over REST and gRPC correctly"
        reason += f"; {serving_engines.summary(report['engines'], features.SERVING_SIGNATURE)}"
    except InfraValidationFailed as error:
        report, blessed, reason = {"model_name": model_name}, False, str(error)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.update(blessed=blessed, reason=reason)
    # Through TFX's file I/O, so the report lands in the artifact on gs:// (Vertex AI) as well as on local disk.
    fileio.makedirs(blessing.uri)
    with fileio.open(os.path.join(blessing.uri, REPORT_FILE), "w") as handle:
        handle.write(json.dumps(report, indent=2))
    io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_BLESSED" if blessed else "INFRA_NOT_BLESSED"), "")
    blessing.set_int_custom_property(BLESSED_KEY, int(blessed))
    blessing.set_string_custom_property("reason", reason[:2000])
    record_engines(blessing, report)
    if not blessed:
        logger.warning("InfraValidator: NOT blessed: %s", reason)
        return
    logger.info("InfraValidator: blessed (%s; model available after %.1f s)", reason, report.get("load_s", 0.0))
    if make_warmup:
        stamped = path_utils.stamped_model_path(blessing.uri)
        io_utils.copy_dir(model_dir, stamped)
        io_utils.write_tfrecord_file(path_utils.warmup_file_path(stamped), *warmup_requests(model_name, reviews))
        blessing.set_int_custom_property(MODEL_FLAG_KEY, 1)
