"""The Trainer's ONNX Runtime engine: a `tokenize` signature, the graph of the exported weights, a manifest the server
reads, the int8 accuracy gate, and no engine where it cannot or should not be.

The model is the cross-stack test's tiny deterministic BERT (in-process encoder, fixed head), exported through
`export_serving_model` as run_fn does; ONNX Runtime is run here directly, not through the model server.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from model_server.onnx_manifest import MANIFEST_FILE, read_onnx_manifest
from pipeline_modules import features
from pipeline_modules.trainer.onnx_export import (
    GRAPH_FILE,
    PROBE_TEXTS,
    TOKENIZE_SIGNATURE,
    EngineExport,
    drop_upper_bound,
    export_onnx_engine,
)
from tests.pipeline_modules.trainer.test_cross_stack_scores import (  # noqa: F401 - fixtures used by name
    REVIEWS,
    head_weights,
    smoke_config,
    tiny_encoder,
    transform_output,
)

LABELS = [1, 1, 0, 1, 1, 1, 0, 1]  # what the reviews say (the tiny model is random: its accuracy is what it is)
FP32_TOLERANCE = 1e-4


def _engine(encoder: Any, config: Any, serving_engine: str = "onnxruntime", max_drop: float = 0.003) -> EngineExport:
    return EngineExport(
        serving_engine=serving_engine,
        int8_max_accuracy_drop=max_drop,
        eval_examples=6,  # of the 8 eval reviews: the cap is honoured
        vocab_file=encoder.vocab_file,
        do_lower_case=encoder.do_lower_case,
        head_fraction=config.head_fraction,
    )


@pytest.fixture(scope="module")
def model(smoke_config, tiny_encoder) -> tf.keras.Model:  # noqa: F811
    from pipeline_modules.trainer.model import build_model

    built = build_model(tiny_encoder.path, pooling="mean", dropout=smoke_config.dropout)
    kernel, bias = head_weights(tiny_encoder.hidden_size)
    built.get_layer("logit").kernel.assign(kernel)
    built.get_layer("logit").bias.assign(bias)
    return built


@pytest.fixture(scope="module")
def eval_batches(transform_output) -> list[tuple[dict[str, tf.Tensor], tf.Tensor]]:  # noqa: F811
    """Transform's eval examples as the Trainer's eval dataset yields them: (inputs, label) batches."""
    transformed = transform_output.transform_features_layer()({features.REVIEW_KEY: tf.constant(REVIEWS)})
    inputs = {key: tf.cast(transformed[key], tf.int64) for key in features.ENCODER_INPUT_KEYS}
    labels = tf.constant(LABELS, tf.int64)
    return [({k: v[:4] for k, v in inputs.items()}, labels[:4]), ({k: v[4:] for k, v in inputs.items()}, labels[4:])]


def _export(model: tf.keras.Model, path: Path, engine: EngineExport | None, transform: Any, eval_data: Any) -> str:
    import tensorflow_text  # noqa: F401  (the Transform graph's tokenizer ops)

    from pipeline_modules.trainer.export import export_serving_model

    export_serving_model(model, transform, (16,), str(path), engine=engine, eval_dataset=eval_data)
    return str(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model, smoke_config, tiny_encoder, transform_output, eval_batches) -> str:  # noqa: F811
    engine = _engine(tiny_encoder, smoke_config)
    return _export(model, tmp_path_factory.mktemp("onnx_model") / "1", engine, transform_output, eval_batches)


def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _scores(exported: str, session: ort.InferenceSession) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reviews through the SavedModel's serving_default, and through its tokenize signature then the graph."""
    loaded = tf.saved_model.load(exported)
    text = tf.constant(REVIEWS)
    saved = loaded.signatures[features.SERVING_SIGNATURE](**{features.TEXT_INPUT: text})
    tokens = loaded.signatures[TOKENIZE_SIGNATURE](**{features.TEXT_INPUT: text})
    names = [features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT]
    ran = session.run(names, {key: tokens[key].numpy() for key in features.ENCODER_INPUT_KEYS})
    return {k: saved[k].numpy() for k in names}, dict(zip(names, ran, strict=True))


def test_tokenize_gives_the_encoder_inputs_cut_to_the_length_bucket(exported: str, transform_output) -> None:  # noqa: F811
    loaded = tf.saved_model.load(exported)
    assert {features.SERVING_SIGNATURE, features.EXAMPLES_SIGNATURE, features.CLASSIFY_SIGNATURE} <= set(
        loaded.signatures
    )
    tokenize = loaded.signatures[TOKENIZE_SIGNATURE]
    assert list(tokenize.structured_input_signature[1]) == [features.TEXT_INPUT]
    full = transform_output.transform_features_layer()({features.REVIEW_KEY: tf.constant(REVIEWS)})
    short = tokenize(**{features.TEXT_INPUT: tf.constant(REVIEWS[:2])})  # both fit the 16-token bucket
    longest = tokenize(**{features.TEXT_INPUT: tf.constant(REVIEWS)})  # the long review needs all 32
    for key in features.ENCODER_INPUT_KEYS:
        assert short[key].dtype == tf.int64 and longest[key].dtype == tf.int64
        assert short[key].shape == (2, 16) and longest[key].shape == (len(REVIEWS), 32)
        np.testing.assert_array_equal(short[key].numpy(), full[key].numpy()[:2, :16])
        np.testing.assert_array_equal(longest[key].numpy(), full[key].numpy())


def test_the_manifest_names_the_graph_the_tokenization_and_what_was_measured(
    exported: str,
    smoke_config,  # noqa: F811
    tiny_encoder,  # noqa: F811
) -> None:
    signatures = read_onnx_manifest(exported)
    assert list(signatures) == [features.SERVING_SIGNATURE]
    entry = signatures[features.SERVING_SIGNATURE]
    assert (entry.graph, entry.precision, entry.tolerance) == (GRAPH_FILE, "fp32", FP32_TOLERANCE)
    assert (entry.text_input, entry.tokenize_signature) == (features.TEXT_INPUT, TOKENIZE_SIGNATURE)
    assert Path(exported, entry.graph).is_file()
    wordpiece = entry.wordpiece
    assert wordpiece is not None
    assert Path(exported, wordpiece.vocab).read_bytes() == Path(tiny_encoder.vocab_file).read_bytes()
    assert wordpiece.vocab == "assets/vocab.txt" and wordpiece.lower_case is True
    assert (wordpiece.max_seq_length, wordpiece.head_tokens) == (32, round(30 * smoke_config.head_fraction))
    assert wordpiece.replacements == ((r"(?i)<\s*br\s*/?\s*>", " "),)
    assert 0.0 <= entry.measured["max_abs_diff"] <= FP32_TOLERANCE
    assert entry.measured["examples"] == 6 + len(PROBE_TEXTS)  # the eval cap plus the probe texts
    assert not entry.accuracy  # fp32 asked: no accuracy gate


def test_the_graph_answers_as_the_saved_model(exported: str) -> None:
    session = _session(str(Path(exported, GRAPH_FILE)))
    outputs = {o.name: o.type for o in session.get_outputs()}
    assert outputs == {features.PROBABILITY_OUTPUT: "tensor(float)", features.LABEL_OUTPUT: "tensor(string)"}
    saved, ran = _scores(exported, session)
    assert ran[features.PROBABILITY_OUTPUT].dtype == np.float32 and ran[features.PROBABILITY_OUTPUT].shape == (8,)
    np.testing.assert_allclose(
        ran[features.PROBABILITY_OUTPUT], saved[features.PROBABILITY_OUTPUT], rtol=0, atol=FP32_TOLERANCE
    )
    assert ran[features.LABEL_OUTPUT].tolist() == [label.decode() for label in saved[features.LABEL_OUTPUT]]
    assert len(set(ran[features.LABEL_OUTPUT].tolist())) == 2  # both labels occur: the comparison means something


@pytest.mark.parametrize(("max_drop", "precision"), [(1.0, "int8"), (-1.5, "fp32")])
def test_int8_is_used_only_within_the_accuracy_drop(
    exported: str,
    model,
    smoke_config,  # noqa: F811
    tiny_encoder,  # noqa: F811
    eval_batches,
    tmp_path: Path,
    max_drop: float,
    precision: str,
) -> None:
    copy = str(tmp_path / "1")
    shutil.copytree(exported, copy)
    engine = _engine(tiny_encoder, smoke_config, "onnxruntime_int8", max_drop)
    result = export_onnx_engine(model, copy, engine, 32, eval_batches)
    entry = read_onnx_manifest(copy)[features.SERVING_SIGNATURE]
    assert entry.precision == precision and result.signature == entry
    assert set(entry.accuracy) == {"fp32", "int8", "examples", "max_drop"}
    assert (entry.accuracy["examples"], entry.accuracy["max_drop"]) == (6, max_drop)
    assert all(0.0 <= entry.accuracy[k] <= 1.0 for k in ("fp32", "int8"))
    session = _session(str(Path(copy, entry.graph)))
    quantized = any(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for node in _graph(copy).node)
    assert quantized == (precision == "int8")
    saved, ran = _scores(copy, session)
    gap = float(np.max(np.abs(ran[features.PROBABILITY_OUTPUT] - saved[features.PROBABILITY_OUTPUT])))
    if precision == "int8":  # the tolerance the server checks at load: the largest measured difference, rounded up
        assert entry.measured["max_abs_diff"] <= entry.tolerance and entry.tolerance >= FP32_TOLERANCE
        assert entry.tolerance <= max(2 * entry.measured["max_abs_diff"], FP32_TOLERANCE)
        assert gap > 0.0
    else:
        assert entry.tolerance == FP32_TOLERANCE and gap <= FP32_TOLERANCE
        assert "int8 not used" in result.reason and "below fp32" in result.reason


def test_int8_gate_bounds_the_drop_from_the_reviews_the_two_graphs_label_differently() -> None:
    rng = np.random.RandomState(0)
    fp32 = rng.rand(25_000) < 0.83  # which reviews fp32 gets right
    int8 = fp32 ^ (rng.rand(25_000) < 0.036)  # int8 flips 3.6 % of the labels, as on the demo model
    drop, upper, differ = drop_upper_bound(fp32, int8)
    assert differ == int(np.sum(fp32 != int8)) and drop == pytest.approx(fp32.mean() - int8.mean())
    assert 0 < drop < upper < drop + 0.0025  # all 25,000: tight enough for a 0.3-point gate
    drop_2000, upper_2000, _ = drop_upper_bound(fp32[:2000], int8[:2000])
    assert upper_2000 - drop_2000 > 0.005  # 2,000: the bound alone is wider than the gate
    assert drop_upper_bound(fp32, fp32.copy()) == (0.0, 0.0, 0)  # identical labels: nothing lost, for certain
    assert drop_upper_bound(fp32[:1], int8[:1])[1] == float("inf")  # one example proves nothing


def _graph(version_dir: str) -> Any:
    import onnx

    return onnx.load(str(Path(version_dir, GRAPH_FILE))).graph


def test_serving_engine_tensorflow_writes_no_graph_and_no_manifest(
    model,
    smoke_config,  # noqa: F811
    tiny_encoder,  # noqa: F811
    transform_output,  # noqa: F811
    tmp_path: Path,
) -> None:
    engine = _engine(tiny_encoder, smoke_config, "tensorflow")
    path = _export(model, tmp_path / "1", engine, transform_output, None)
    assert not Path(path, MANIFEST_FILE).exists() and not Path(path, GRAPH_FILE).exists()
    assert read_onnx_manifest(path) == {}
    assert TOKENIZE_SIGNATURE not in tf.saved_model.load(path).signatures


def test_a_hub_keras_layer_encoder_gets_no_engine_and_says_so(
    smoke_config,  # noqa: F811
    tiny_encoder,  # noqa: F811
    transform_output,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pipeline_modules.trainer.model import build_model

    through_hub = build_model(tiny_encoder.path, pooling="mean", dropout=0.0, in_process=False)
    with caplog.at_level(logging.INFO, logger="pipeline_modules.trainer.onnx_export"):
        path = _export(through_hub, tmp_path / "1", _engine(tiny_encoder, smoke_config), transform_output, None)
    assert read_onnx_manifest(path) == {} and not Path(path, GRAPH_FILE).exists()
    assert "no ONNX graph (TensorFlow serves the model)" in caplog.text and "KerasLayer" in caplog.text


def test_serving_engine_is_validated_with_the_configuration() -> None:
    from pipeline_modules.config import config_for

    assert config_for("smoke").serving_engine == "onnxruntime"
    with pytest.raises(ValueError, match="serving_engine must be one of tensorflow, onnxruntime, onnxruntime_int8"):
        config_for("smoke", serving_engine="tensorrt")
    with pytest.raises(ValueError, match="int8_max_accuracy_drop"):
        config_for("smoke", int8_max_accuracy_drop=-0.1)
    with pytest.raises(ValueError, match="engine_eval_examples"):
        config_for("smoke", engine_eval_examples=0)


def test_a_failed_engine_export_leaves_tensorflow_serving_and_logs_why(
    model,
    smoke_config,  # noqa: F811
    tiny_encoder,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pipeline_modules.trainer.onnx_export import export_onnx_engine_or_log

    not_a_saved_model = tmp_path / "1"
    not_a_saved_model.mkdir()
    with caplog.at_level(logging.WARNING, logger="pipeline_modules.trainer.onnx_export"):
        result = export_onnx_engine_or_log(model, str(not_a_saved_model), _engine(tiny_encoder, smoke_config), 32)
    assert result is None and read_onnx_manifest(str(not_a_saved_model)) == {}
    assert "no ONNX graph (TensorFlow serves the model): the export failed" in caplog.text
    assert "Traceback" in caplog.text or caplog.records[-1].exc_info is not None
