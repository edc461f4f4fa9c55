"""The exported BERT model's `classify` signature: TF Serving's Classify API on tf.Examples, consistent with
`serving_default`, marked as a classification signature, and checked by the InfraValidator over REST and gRPC.

The model is the cross-stack test's tiny deterministic BERT, built through the product's converter, Transform and
`export_serving_model` (its fixtures are reused here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from pipeline_modules import features
from pipeline_modules.components.infra_validator import (
    InfraValidationFailed,
    review_example,
    validate_with_model_server,
)
from tests.pipeline_modules.trainer.test_cross_stack_scores import (  # noqa: F401 - fixtures used by name
    REVIEWS,
    smoke_config,
    tiny_encoder,
    transform_output,
)

MODEL = "bert_imdb"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, smoke_config, tiny_encoder, transform_output) -> str:  # noqa: F811
    import tensorflow_text  # noqa: F401  (the Transform graph's tokenizer ops)

    from pipeline_modules.trainer.export import export_serving_model
    from pipeline_modules.trainer.model import build_model

    model = build_model(tiny_encoder.path, pooling="mean", dropout=smoke_config.dropout)
    path = str(tmp_path_factory.mktemp("classify_model") / "1")
    export_serving_model(model, transform_output, smoke_config.serving_length_buckets, path)
    return path


def _signature_defs(path: str) -> Any:
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(Path(path, "saved_model.pb").read_bytes())
    return saved_model.meta_graphs[0].signature_def


def test_the_classify_signature_is_marked_for_tf_serving(exported: str) -> None:
    defs = _signature_defs(exported)
    classify = defs[features.CLASSIFY_SIGNATURE]
    assert classify.method_name == features.CLASSIFY_METHOD_NAME
    assert list(classify.inputs) == [features.CLASSIFY_INPUT]
    assert set(classify.outputs) == {features.CLASSES_OUTPUT, features.SCORES_OUTPUT}
    assert defs[features.SERVING_SIGNATURE].method_name == "tensorflow/serving/predict"  # the others: as saved
    # the fingerprint was rewritten for the edited saved_model.pb, and TF2's loader reads the model as before
    assert tf.saved_model.experimental.read_fingerprint(exported).saved_model_checksum > 0
    assert features.CLASSIFY_SIGNATURE in tf.saved_model.load(exported).signatures


def test_classify_scores_are_predicts_probability(exported: str) -> None:
    loaded = tf.saved_model.load(exported)
    probability = loaded.signatures[features.SERVING_SIGNATURE](**{features.TEXT_INPUT: tf.constant(REVIEWS)})[
        features.PROBABILITY_OUTPUT
    ].numpy()
    examples = tf.constant([review_example(r).SerializeToString() for r in REVIEWS])
    out = loaded.signatures[features.CLASSIFY_SIGNATURE](**{features.CLASSIFY_INPUT: examples})
    classes, scores = out[features.CLASSES_OUTPUT].numpy(), out[features.SCORES_OUTPUT].numpy()
    assert classes.tolist() == [[features.POSITIVE.encode(), features.NEGATIVE.encode()]] * len(REVIEWS)
    assert scores.dtype == np.float32 and scores.shape == (len(REVIEWS), 2)
    np.testing.assert_allclose(scores[:, 0], probability, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores[:, 1], 1.0 - probability, rtol=0, atol=1e-6)


def test_infra_validator_checks_classify_over_rest_and_grpc(exported: str, tmp_path: Path) -> None:
    report = validate_with_model_server(
        exported, REVIEWS[:4], model_name=MODEL, load_deadline_s=180, tolerance=1e-4, workdir=str(tmp_path)
    )
    assert report["shutdown_exit_code"] == 0 and report["requests"] == 4


def test_infra_validator_refuses_a_model_without_classify(tmp_path: Path) -> None:
    from tests.doubles.toy_model import build_toy_model

    model_dir = build_toy_model(str(tmp_path / "toy"), bias=0.0)
    with pytest.raises(InfraValidationFailed) as info:
        validate_with_model_server(
            model_dir, ["a great film"], model_name=MODEL, load_deadline_s=180, tolerance=1e-4, workdir=str(tmp_path)
        )
    message = str(info.value)
    assert "signature 'classify' missing" in message and "REST classify failed: answered 400" in message
    assert os.path.isdir(model_dir)
