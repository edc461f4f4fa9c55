"""ONNX Runtime as the engine of a manifest's signatures (model_server/onnx_engine.py, wordpiece.py): the load check,
the fast tokenizer against TF Text, the fallbacks to TensorFlow and the REST API on top, on a tiny model."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_server.config import parse_args
from model_server.model import ServableModel, import_op_libraries
from model_server.model_config import ConfigError
from model_server.onnx_checks import PROBE_TEXTS, crossover_rows
from model_server.onnx_engine import OnnxOptions, OnnxSignatureEngine
from model_server.onnx_manifest import MANIFEST_FILE, WordPieceSpec, engines_in_log
from model_server.process import ServerProcess
from model_server.wordpiece import MASK, FastWordPiece, pad_rows
from tests.doubles.onnx_sentiment import MAX_SEQ_LENGTH, TOKENIZE, build_onnx_sentiment_model, head_tokens
from tests.model_server.ms_helpers import call_json, copy_version, metric_samples

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

SIG = "serving_default"
ENGINE_METRIC = "model_server_signature_engine"
ASCII_TEXTS = [
    "The film was wonderful!",
    "UNBELIEVABLE acting, the plot... don't.",
    "a movie<br /><br />with a story<BR/>and the acting",
    "tabs\tand\nnew lines\r\nand (brackets) [x] {y} 'quotes' \"double\" $5 10% #1 @me ~ ^ _ ` | \\ / * + = < >",
    " ".join(["the", "film", "was", "wonderful", "and", "it", "is", "awful"] * 6) + " plot acting story",
    "x" * 100 + " " + "y" * 101 + " caf",
    "it",
]
NON_ASCII_TEXTS = ["Café was wonderful", "映画 was awful", "the film 😍 was", "naïve ÀWFUL plot"]


def _load(path: str, caplog: pytest.LogCaptureFixture | None = None, **onnx: Any) -> ServableModel:
    """Loaded with ONNX Runtime for every batch size unless ``max_batch_size`` is given (the timed default would
    make which engine answers depend on this machine's speed)."""
    import_op_libraries()
    model = ServableModel("tiny", 1, path)
    if caplog is not None:
        caplog.set_level(logging.INFO)
    model.load(onnx=OnnxOptions(**{"max_batch_size": 0, **onnx}))
    return model


def _texts(*texts: str) -> np.ndarray:
    return np.array([t.encode("utf-8") for t in texts], dtype=object)


def _engine(model: ServableModel) -> OnnxSignatureEngine:
    return model._onnx[SIG]


def _tf_tokens(reference: ServableModel, texts: np.ndarray) -> dict[str, np.ndarray]:
    """The tokenize signature's ids, trimmed to the longest row (what the graph needs)."""
    out = reference.predict(TOKENIZE, {"text": texts})
    width = int(out[MASK].sum(axis=1).max())
    return {k: v[:, :width] for k, v in out.items()}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("onnx_models")
    built = {
        "good": build_onnx_sentiment_model(str(root / "good"), warmup_texts=["a wonderful film", "an awful plot"]),
        "wrong": build_onnx_sentiment_model(str(root / "wrong"), weight_shift=0.5),
        "cased": build_onnx_sentiment_model(str(root / "cased"), manifest_lower_case=False),
        "none": build_onnx_sentiment_model(str(root / "none"), manifest=False),
        # within its tolerance, but measurably off TensorFlow: shows which engine answered a request
        "shifted": build_onnx_sentiment_model(str(root / "shifted"), weight_shift=2e-3, tolerance=0.05),
    }
    return built


@pytest.fixture(scope="module")
def accelerated(models: dict[str, str]) -> ServableModel:
    return _load(models["good"])


@pytest.fixture(scope="module")
def reference(models: dict[str, str]) -> ServableModel:
    return _load(models["good"], mode="off")


def test_accelerated_signature_logs_its_engine(models: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    model = _load(models["good"], caplog)
    assert model.engines == {SIG: "onnxruntime fp32, wordpiece tokenizer", TOKENIZE: "tensorflow"}
    [line] = engines_in_log(caplog.text)
    assert (line["model"], line["version"], line["signature"]) == ("tiny", "1", SIG)
    assert (line["engine"], line["precision"]) == ("onnxruntime", "fp32")
    # the warm-up texts and the built-in probes, as one batch and one at a time
    assert f"on {2 * (2 + len(PROBE_TEXTS))} load checks" in line["detail"], line
    assert "tokenizer wordpiece" in line["detail"]


def test_predict_equals_tensorflow(accelerated: ServableModel, reference: ServableModel) -> None:
    for texts in (ASCII_TEXTS, NON_ASCII_TEXTS, ASCII_TEXTS[:1], [*NON_ASCII_TEXTS[:2], *ASCII_TEXTS], PROBE_TEXTS):
        batch = _texts(*texts)
        got, want = accelerated.predict(SIG, {"text": batch}), reference.predict(SIG, {"text": batch})
        assert set(got) == set(want) == {"probability", "label"}
        assert got["probability"].dtype == np.float32 and got["probability"].shape == (len(texts),)
        np.testing.assert_allclose(got["probability"], want["probability"], atol=1e-5, rtol=0)
        assert got["label"].tolist() == want["label"].tolist()
        assert all(isinstance(v, bytes) for v in got["label"])
    # the answers vary: the check is not comparing constants
    spread = reference.predict(SIG, {"text": _texts(*ASCII_TEXTS)})["probability"]
    assert spread.max() - spread.min() > 0.1


def test_fast_tokenizer_ids_equal_tf_text(accelerated: ServableModel, reference: ServableModel) -> None:
    fast = _engine(accelerated).fast
    assert fast is not None
    texts = _texts(*ASCII_TEXTS)
    prepared = [fast.prepare(t) for t in texts]
    assert None not in prepared
    mine = pad_rows(fast.encode([p or "" for p in prepared]), fast.pad_id)
    want = _tf_tokens(reference, texts)
    for key, value in want.items():
        np.testing.assert_array_equal(mine[key], value, err_msg=key)
    # the long rows kept their head and their tail: [CLS] + head + tail + [SEP]
    long_row = mine["input_word_ids"][4]
    assert len(long_row) == MAX_SEQ_LENGTH and head_tokens() not in (0, MAX_SEQ_LENGTH - 2)
    assert all(fast.prepare(t) is None for t in _texts(*NON_ASCII_TEXTS, "control \x07 char", "del \x7f"))
    assert fast.prepare("not bytes") is None


def test_fast_tokenizer_on_a_real_bert_vocabulary(minilm_vocab_file: str) -> None:
    """The pipeline's encode_reviews and the fast tokenizer on a 30k-token uncased vocabulary: word pieces, numbers,
    contractions, punctuation runs, markup and head-and-tail truncation."""
    import os

    import tensorflow as tf

    from pipeline_modules.transform_module import HTML_LINE_BREAK, encode_reviews

    texts = [
        'Unbelievably, the U.S.A. e-mail said: "I didn\'t LOVE it"... 10/10 (well, 9.5)!',
        "Antidisestablishmentarianism<br /><br />is a WORD; so is pneumonoultramicroscopic.",
        "Hyphen-ated, under_scored, CamelCased & #hash-tagged @mentions ~~tildes~~ `ticks` {braces}",
        " ".join(f"In scene {i} the actors were brilliant but the script was dreadful." for i in range(30)),
        "zzzzqqqxxjjj " + "q" * 100 + " " + "w" * 101,
    ]
    max_seq_length = 32
    spec = WordPieceSpec(
        os.path.basename(minilm_vocab_file),
        True,
        max_seq_length,
        head_tokens(max_seq_length),
        ((HTML_LINE_BREAK, " "),),
    )
    fast = FastWordPiece(spec, os.path.dirname(minilm_vocab_file))
    want = encode_reviews(
        tf.constant(texts),
        vocab_file=minilm_vocab_file,
        do_lower_case=True,
        max_seq_length=max_seq_length,
        head_fraction=0.25,
    )
    rows = fast.encode([fast.prepare(t.encode()) or "" for t in texts])
    mine = pad_rows(rows, fast.pad_id, max_seq_length)
    for key, value in want.items():
        np.testing.assert_array_equal(mine[key], value.numpy(), err_msg=key)
    assert len(rows[3]) == max_seq_length and len(rows[0]) > 20  # truncated, and word pieces of a short text


def test_non_ascii_rows_use_the_tokenize_signature(accelerated: ServableModel, reference: ServableModel) -> None:
    engine = _engine(accelerated)
    calls: list[int] = []
    run_tf = engine.run_tf

    def counting(sig: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, Any]:
        calls.append(len(inputs["text"]))
        return run_tf(sig, inputs, outputs)

    engine.run_tf = counting
    try:
        texts = _texts(ASCII_TEXTS[4], NON_ASCII_TEXTS[0], ASCII_TEXTS[0], NON_ASCII_TEXTS[1])
        feed = engine.tokenize(texts)
        assert calls == [2]  # only the two non-ASCII rows went to TensorFlow
        engine.tokenize(_texts(*ASCII_TEXTS))
        assert calls == [2]
    finally:
        engine.run_tf = run_tf
    want = _tf_tokens(reference, texts)
    for key in engine.graph_inputs:
        np.testing.assert_array_equal(feed[key], want[key], err_msg=key)


def test_graph_that_disagrees_falls_back(models: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    model = _load(models["wrong"], caplog)
    assert model.engines[SIG] == "tensorflow"
    [line] = engines_in_log(caplog.text)
    assert line["engine"] == "tensorflow" and "differs from TensorFlow's by" in line["detail"], line
    assert model.predict(SIG, {"text": _texts("it")})["probability"].shape == (1,)


def test_tokenizer_that_disagrees_is_not_used(
    models: dict[str, str], reference: ServableModel, caplog: pytest.LogCaptureFixture
) -> None:
    model = _load(models["cased"], caplog)  # the manifest says cased; TF Text lower-cases
    assert model.engines[SIG] == "onnxruntime fp32, tensorflow tokenizer"
    assert "the wordpiece tokenizer differs from tokenize" in caplog.text
    batch = _texts(*ASCII_TEXTS)
    got, want = model.predict(SIG, {"text": batch}), reference.predict(SIG, {"text": batch})
    np.testing.assert_allclose(got["probability"], want["probability"], atol=1e-5, rtol=0)


def _copy(source: str, target: Path) -> str:
    shutil.copytree(source, target)
    return str(target)


@pytest.mark.parametrize(
    ("content", "logged"),
    [
        (None, None),  # no manifest: TensorFlow, and nothing to say
        ("{not json", None),  # garbled: a warning, no signature to name
        ('{"format": 2, "signatures": {"serving_default": {}}}', "bad manifest: "),
        ('{"format": 1, "signatures": {"serving_default": {"graph": "../x.onnx"}}}', "bad manifest: "),
    ],
)
def test_missing_or_bad_manifest_serves_tensorflow(
    models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | None, logged: str | None
) -> None:
    path = _copy(models["none"], tmp_path / "v")
    if content is not None:
        (Path(path) / MANIFEST_FILE).write_text(content)
    model = _load(path, caplog)
    assert set(model.engines.values()) == {"tensorflow"}
    lines = engines_in_log(caplog.text)
    if logged is None:
        assert lines == []
        assert (content is None) == ("ONNX manifest not used" not in caplog.text)
    else:
        [line] = lines
        assert line["engine"] == "tensorflow" and line["detail"].startswith(logged), line
    assert model.predict(SIG, {"text": _texts("the film")})["label"].shape == (1,)


def test_missing_graph_file_serves_tensorflow(
    models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _copy(models["good"], tmp_path / "v")
    (Path(path) / "assets.extra" / "onnx" / "model.onnx").unlink()
    model = _load(path, caplog)
    assert model.engines[SIG] == "tensorflow"
    assert "not found" in engines_in_log(caplog.text)[0]["detail"]


def test_onnx_engine_off(models: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    model = _load(models["good"], caplog, mode="off")
    assert model.engines[SIG] == "tensorflow"
    assert [(x["engine"], x["detail"]) for x in engines_in_log(caplog.text)] == [("tensorflow", "--onnx_engine=off")]
    options = parse_args(["--model_base_path=/m", "--onnx_engine=off", "--onnx_intra_op_threads=2"])
    assert (options.onnx_engine, options.onnx_intra_op_threads) == ("off", 2)
    assert parse_args(["--model_base_path=/m"]).onnx_engine == "auto"
    with pytest.raises(SystemExit):
        parse_args(["--model_base_path=/m", "--onnx_engine=fast"])
    with pytest.raises(ConfigError):
        parse_args(["--model_base_path=/m", "--onnx_intra_op_threads=-1"])


def _outcome(model: ServableModel, inputs: dict[str, np.ndarray]) -> tuple[str, str]:
    try:
        return "ok", repr(model.predict(SIG, inputs))
    except Exception as exc:  # noqa: BLE001 - what the client would get, compared between engines
        return type(exc).__name__, str(exc)


def test_inputs_the_engine_does_not_take_get_tensorflows_answer(
    accelerated: ServableModel, reference: ServableModel
) -> None:
    for inputs in (
        {"text": np.array([[b"a film"]], dtype=object)},
        {"text": np.array([1, 2], dtype=np.int64)},
        {"text": np.array(b"a film", dtype=object)},
        {"text": np.array([], dtype=object)},
        {"text": _texts("a film"), "extra": _texts("b")},
    ):
        assert _outcome(accelerated, inputs) == _outcome(reference, inputs), inputs


def test_rest_predict_through_a_server(
    models: dict[str, str], reference: ServableModel, tmp_path: Path, spawn: Callable[..., ServerProcess]
) -> None:
    base = tmp_path / "tiny"
    copy_version(models["shifted"], base, 1)
    server = spawn(model_name="tiny", model_base_path=str(base), extra_args=["--onnx_max_batch_size=0"])
    server.wait_for_model("tiny", timeout=120)
    texts = [*ASCII_TEXTS, *NON_ASCII_TEXTS]
    onnx = _load(models["shifted"]).predict(SIG, {"text": _texts(*texts)})
    tf = reference.predict(SIG, {"text": _texts(*texts)})
    assert np.abs(onnx["probability"] - tf["probability"]).max() > 1e-4  # the two engines are told apart
    with server.rest_client() as rest:
        status, doc = call_json(rest, "POST", "/v1/models/tiny:predict", {"instances": texts})
        assert status == 200, doc
        got = doc["predictions"]
        np.testing.assert_allclose([p["probability"] for p in got], onnx["probability"], atol=1e-6, rtol=0)
        np.testing.assert_allclose([p["probability"] for p in got], tf["probability"], atol=0.05, rtol=0)
        assert [p["label"].encode() for p in got] == onnx["label"].tolist() == tf["label"].tolist()
        status, doc = call_json(rest, "POST", "/v1/models/tiny:predict", {"instances": ["a film", " "]})
        assert status == 400 and "instance 1 is empty" in doc["error"], doc
        status, doc = call_json(rest, "POST", "/v1/models/tiny:predict", {"instances": [1, 2]})
        assert status == 400, doc  # TensorFlow's dtype error, as without the engine
        status, _, page = rest.request("GET", "/monitoring/prometheus/metrics")
    [line] = [x for x in engines_in_log(server.log_text()) if x["signature"] == SIG]
    assert (line["model"], line["engine"]) == ("tiny", "onnxruntime")
    series = {dict(k)["signature"]: dict(k)["engine"] for k in metric_samples(page.decode(), ENGINE_METRIC)}
    assert status == 200 and series == {SIG: "onnxruntime", TOKENIZE: "tensorflow"}, series


def test_onnx_runtime_failure_is_answered_by_tensorflow(
    accelerated: ServableModel, reference: ServableModel, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(accelerated)
    session = engine.session

    class Failing:
        def run(self, *args: object) -> None:
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : simulated")

    engine.session = Failing()
    try:
        batch = _texts(*ASCII_TEXTS)
        got, want = accelerated.predict(SIG, {"text": batch}), reference.predict(SIG, {"text": batch})
    finally:
        engine.session = session
    assert got["label"].tolist() == want["label"].tolist()
    np.testing.assert_array_equal(got["probability"], want["probability"])  # TensorFlow's own answer, bit for bit
    assert "ONNX Runtime failed" in caplog.text and "TensorFlow answers" in caplog.text


@pytest.mark.parametrize(
    ("tf_ms", "ort_ms", "rows"),
    [
        ((18.0, 110.0), (6.0, 122.0), 16),  # faster alone, slower on 32: up to where the lines cross
        ((18.0, 110.0), (6.0, 100.0), 0),  # faster at both: every call
        ((5.0, 110.0), (6.0, 100.0), 0),  # faster on batches only: every call too
        ((5.0, 100.0), (6.0, 110.0), None),  # slower at both: TensorFlow serves
        ((18.0, 110.0), (17.9, 400.0), 1),  # barely faster alone: batch 1 only
    ],
)
def test_the_timed_crossover_sends_each_batch_size_to_the_faster_engine(
    tf_ms: tuple[float, float], ort_ms: tuple[float, float], rows: int | None
) -> None:
    assert crossover_rows(tf_ms, ort_ms, 32) == rows


def test_max_batch_size_sends_larger_calls_to_tensorflow(
    models: dict[str, str], reference: ServableModel, caplog: pytest.LogCaptureFixture
) -> None:
    model = _load(models["shifted"], caplog, max_batch_size=2)  # ONNX Runtime's answers differ measurably
    assert model.engines[SIG] == "onnxruntime fp32, wordpiece tokenizer, calls of up to 2 rows"
    assert "calls of up to 2 rows, TensorFlow above" in engines_in_log(caplog.text)[0]["detail"]
    texts = _texts(*ASCII_TEXTS[:3])
    tf = reference.predict(SIG, {"text": texts})["probability"]
    onnx = _load(models["shifted"]).predict(SIG, {"text": texts})["probability"]
    np.testing.assert_array_equal(model.predict(SIG, {"text": texts})["probability"], tf)  # 3 rows: TensorFlow
    np.testing.assert_allclose(model.predict(SIG, {"text": texts[:2]})["probability"], onnx[:2], atol=1e-6)
    assert np.abs(onnx[:2] - tf[:2]).max() > 1e-4


def test_the_default_times_both_engines_at_load(models: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    model = _load(models["good"], caplog, max_batch_size=-1)
    [line] = engines_in_log(caplog.text)
    if line["engine"] == "onnxruntime":  # which one won depends on this machine; the log must say what was timed
        assert "timed 1 / 32 rows: onnxruntime" in line["detail"], line
        assert model.engines[SIG].startswith("onnxruntime fp32")
    else:
        assert "TensorFlow is faster here [timed 1 / 32 rows" in line["detail"], line
        assert model.engines[SIG] == "tensorflow"
    options = parse_args(["--model_base_path=/m", "--onnx_max_batch_size=8"])
    assert options.onnx_max_batch_size == 8
    assert parse_args(["--model_base_path=/m"]).onnx_max_batch_size == -1
    assert parse_args(["--model_base_path=/m", "--onnx_max_batch_size=auto"]).onnx_max_batch_size == -1
    with pytest.raises(SystemExit):
        parse_args(["--model_base_path=/m", "--onnx_max_batch_size=-3"])
