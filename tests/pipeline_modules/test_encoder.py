"""Tests for the Hugging Face -> TF Hub BERT encoder converter and the encoder handle resolution.

The converted encoder is checked against an independent plain-NumPy BERT forward pass computed straight from the
safetensors weights (float64), and against published sentence-transformers similarities for all-MiniLM-L6-v2.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text as text
import tf_keras
from safetensors.numpy import load_file, save_file

from pipeline_modules.encoder import ResolvedEncoder, convert, hf_to_tfhub, resolve_encoder
from pipeline_modules.encoder import handles as handles_module

# float32 TF vs float64 NumPy through 6 layers: the largest difference measured is 4.4e-6 (sequence_output; values up
# to ~6 in magnitude). 1e-4 absolute + 1e-4 relative leaves 20x headroom, while real mistakes fail it by far: tanh-GELU
# instead of erf moves outputs by 3.6e-3, LayerNorm epsilon 1e-5 instead of 1e-12 by 4.0e-3, a dropped mask by 2.4.
ATOL = 1e-4
RTOL = 1e-4

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome",
    "The new movie is so great",
    "This film was a complete waste of two hours; the acting was wooden and the plot made no sense at all.",
    "Une critique élogieuse: très réussi, Amélie!",
]


# ----------------------------------------------------------------------------------------------------------------------
# Independent reference: BERT in NumPy, straight from the checkpoint's tensors.


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


REFERENCE_ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "gelu_new": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
}


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numpy_bert(
    weights: dict[str, np.ndarray],
    config: dict,
    word_ids: np.ndarray,
    mask: np.ndarray,
    type_ids: np.ndarray,
    num_layers: int | None = None,
) -> dict[str, object]:
    """BERT forward pass (HF BertModel semantics) in float64; returns sequence, pooled and per-layer outputs."""
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in weights.items() if v.dtype.kind == "f"}

    def ln(x: np.ndarray, prefix: str) -> np.ndarray:
        gamma = w.get(f"{prefix}.weight", w.get(f"{prefix}.gamma"))
        beta = w.get(f"{prefix}.bias", w.get(f"{prefix}.beta"))
        return _layer_norm(x, gamma, beta, config.get("layer_norm_eps", 1e-12))

    def linear(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[f"{prefix}.weight"].T + w[f"{prefix}.bias"]

    act = REFERENCE_ACTIVATIONS[config.get("hidden_act", "gelu")]
    batch, seq = word_ids.shape
    heads = config["num_attention_heads"]
    head_size = config["hidden_size"] // heads
    x = (
        w["embeddings.word_embeddings.weight"][word_ids]
        + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
        + w["embeddings.token_type_embeddings.weight"][type_ids]
    )
    x = ln(x, "embeddings.LayerNorm")
    key_is_padding = mask[:, None, None, :] == 0
    layers = []
    for i in range(num_layers or config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def heads_of(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, seq, heads, head_size).transpose(0, 2, 1, 3)

        q = heads_of(linear(x, f"{p}.attention.self.query"))
        k = heads_of(linear(x, f"{p}.attention.self.key"))
        v = heads_of(linear(x, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_size)
        scores = np.where(key_is_padding, -np.inf, scores)
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, heads * head_size)
        x = ln(x + linear(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
        hidden = act(linear(x, f"{p}.intermediate.dense"))
        x = ln(x + linear(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        layers.append(x)
    # Without pooler weights the converter's documented choice is an identity dense layer, i.e. tanh([CLS]).
    cls = x[:, 0]
    pooled = np.tanh(linear(cls, "pooler.dense") if "pooler.dense.weight" in w else cls)
    return {"sequence_output": x, "pooled_output": pooled, "encoder_outputs": layers}


# ----------------------------------------------------------------------------------------------------------------------
# Helpers and fixtures


def tokenize(vocab_file: str, do_lower_case: bool, sentences: list[str], seq_len: int) -> dict[str, np.ndarray]:
    """[CLS] tokens [SEP], padded to seq_len, with the converted model's own vocabulary asset."""
    vocab = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    tokenizer = text.BertTokenizer(vocab_file, lower_case=do_lower_case, token_out_type=tf.int64)
    tokens = tokenizer.tokenize(tf.constant(sentences)).merge_dims(-2, -1)
    ids, type_ids = text.combine_segments(
        [tokens], start_of_sequence_id=vocab.index("[CLS]"), end_of_segment_id=vocab.index("[SEP]")
    )
    assert int(ids.row_lengths().numpy().max()) <= seq_len, "a sentence would be truncated: raise seq_len"
    word_ids, mask = text.pad_model_inputs(ids, max_seq_length=seq_len)
    type_ids, _ = text.pad_model_inputs(type_ids, max_seq_length=seq_len)
    return {
        "input_word_ids": word_ids.numpy().astype(np.int32),
        "input_mask": mask.numpy().astype(np.int32),
        "input_type_ids": type_ids.numpy().astype(np.int32),
    }


def reference_args(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Maps the TF Hub input names onto numpy_bert's argument names."""
    return {"word_ids": inputs["input_word_ids"], "mask": inputs["input_mask"], "type_ids": inputs["input_type_ids"]}


def run_encoder(layer: hub.KerasLayer, inputs: dict[str, np.ndarray], training: bool = False) -> dict:
    outputs = layer({k: tf.constant(v) for k, v in inputs.items()}, training=training)
    return tf.nest.map_structure(lambda t: t.numpy(), outputs)


def mean_pooled(sequence_output: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pooling for all-MiniLM-L6-v2: masked mean, then L2 normalisation."""
    summed = (sequence_output * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return summed / np.linalg.norm(summed, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def hf_config(minilm_checkpoint_dir: Path) -> dict:
    return json.loads((minilm_checkpoint_dir / "config.json").read_text())


@pytest.fixture(scope="module")
def hf_weights(minilm_checkpoint_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(minilm_checkpoint_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


@pytest.fixture(scope="module")
def minilm(cache_dir: Path) -> ResolvedEncoder:
    """The offline default, converted once for this module."""
    return resolve_encoder(None, cache_dir)


@pytest.fixture(scope="module")
def frozen_layer(minilm: ResolvedEncoder) -> hub.KerasLayer:
    return hub.KerasLayer(minilm.path, trainable=False)


@pytest.fixture(scope="module")
def sentence_inputs(minilm: ResolvedEncoder) -> dict[str, np.ndarray]:
    return tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES, seq_len=32)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, minilm_checkpoint_dir: Path) -> Path:
    """A random 2-layer BERT in the older BertForPreTraining layout: 'bert.' prefixes, LayerNorm gamma/beta names,
    an MLM head to ignore, tanh-GELU and no pooler, to exercise what the MiniLM checkpoint does not."""
    rng = np.random.default_rng(0)
    hidden, inter, vocab_size, max_pos = 32, 64, 30522, 64
    config = {
        "model_type": "bert",
        "hidden_size": hidden,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "intermediate_size": inter,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_pos,
        "type_vocab_size": 2,
        "hidden_act": "gelu_new",
        "layer_norm_eps": 1e-12,
    }

    def rand(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    weights = {
        "bert.embeddings.word_embeddings.weight": rand(vocab_size, hidden),
        "bert.embeddings.position_embeddings.weight": rand(max_pos, hidden),
        "bert.embeddings.token_type_embeddings.weight": rand(2, hidden),
        "bert.embeddings.LayerNorm.gamma": 1.0 + rand(hidden),
        "bert.embeddings.LayerNorm.beta": rand(hidden),
        "bert.embeddings.position_ids": np.arange(max_pos, dtype=np.int64)[None],
        "cls.predictions.bias": rand(vocab_size),
    }
    for i in range(2):
        p = f"bert.encoder.layer.{i}"
        for name, (out_dim, in_dim) in {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (inter, hidden),
            "output.dense": (hidden, inter),
        }.items():
            weights[f"{p}.{name}.weight"] = rand(out_dim, in_dim)
            weights[f"{p}.{name}.bias"] = rand(out_dim)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}.{ln}.gamma"] = 1.0 + rand(hidden)
            weights[f"{p}.{ln}.beta"] = rand(hidden)
    path = tmp_path_factory.mktemp("hf") / "tiny-bert"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    shutil.copy(minilm_checkpoint_dir / "vocab.txt", path / "vocab.txt")
    save_file(weights, str(path / "model.safetensors"))
    return path


# ----------------------------------------------------------------------------------------------------------------------
# Numerics


def test_matches_numpy_reference(frozen_layer, sentence_inputs, hf_weights, hf_config):
    got = run_encoder(frozen_layer, sentence_inputs)
    want = numpy_bert(hf_weights, hf_config, **reference_args(sentence_inputs))
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_array_equal(got["default"], got["pooled_output"])
    assert len(got["encoder_outputs"]) == hf_config["num_hidden_layers"]
    for got_layer, want_layer in zip(got["encoder_outputs"], want["encoder_outputs"], strict=True):
        np.testing.assert_allclose(got_layer, want_layer, atol=ATOL, rtol=RTOL)
    # The reference is not trivially close to anything: outputs are O(1) and differ across sentences.
    assert np.abs(want["sequence_output"]).max() > 1.0
    assert np.abs(want["pooled_output"][0] - want["pooled_output"][2]).max() > 0.1


def test_published_sentence_similarities(frozen_layer, minilm):
    """External ground truth: the similarities published for sentence-transformers/all-MiniLM-L6-v2."""
    inputs = tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES[:4], seq_len=16)
    emb = mean_pooled(run_encoder(frozen_layer, inputs)["sequence_output"], inputs["input_mask"])
    assert float(emb[0] @ emb[1]) == pytest.approx(0.755, abs=0.01)
    assert float(emb[2] @ emb[3]) == pytest.approx(0.894, abs=0.01)
    assert float(emb[0] @ emb[2]) < 0.3  # unrelated sentences are not similar


def test_tokenizer_uses_vocab_asset_like_uncased_bert(sentence_inputs, minilm):
    vocab = Path(minilm.vocab_file).read_text(encoding="utf-8").splitlines()
    ids = sentence_inputs["input_word_ids"][0]
    tokens = [vocab[i] for i in ids[sentence_inputs["input_mask"][0] == 1]]
    assert tokens == ["[CLS]", "a", "man", "is", "eating", "food", ".", "[SEP]"]
    accented = [vocab[i] for i in sentence_inputs["input_word_ids"][5] if i]
    assert "amelie" in accented and "tres" in accented  # lower-cased and accents stripped, as the HF tokenizer does


def test_padding_does_not_change_real_tokens(frozen_layer, minilm):
    short = tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES, seq_len=32)
    long = tokenize(minilm.vocab_file, minilm.do_lower_case, SENTENCES, seq_len=128)
    np.testing.assert_array_equal(long["input_word_ids"][:, :32], short["input_word_ids"])
    assert long["input_mask"][:, 32:].sum() == 0
    out_short, out_long = run_encoder(frozen_layer, short), run_encoder(frozen_layer, long)
    real = short["input_mask"].astype(bool)
    np.testing.assert_allclose(
        out_long["sequence_output"][:, :32][real], out_short["sequence_output"][real], atol=1e-5, rtol=1e-5
    )
    np.testing.assert_allclose(out_long["pooled_output"], out_short["pooled_output"], atol=1e-5, rtol=1e-5)


def test_sequence_length_is_dynamic_up_to_max_positions(frozen_layer, hf_config):
    max_len = hf_config["max_position_embeddings"]
    for seq_len in (3, max_len):
        inputs = {
            "input_word_ids": np.full([1, seq_len], 1000, np.int32),
            "input_mask": np.ones([1, seq_len], np.int32),
            "input_type_ids": np.zeros([1, seq_len], np.int32),
        }
        assert run_encoder(frozen_layer, inputs)["sequence_output"].shape == (1, seq_len, hf_config["hidden_size"])
    too_long = {k: np.ones([1, max_len + 1], np.int32) for k in hf_to_tfhub.INPUT_KEYS}
    # Caught by shape inference (ValueError) or, where shapes are unknown, by the converter's runtime assertion.
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="512|max_position_embeddings"):
        run_encoder(frozen_layer, too_long)


# ----------------------------------------------------------------------------------------------------------------------
# Fine-tuning interface


def test_trainable_weights_and_gradient_step(minilm, hf_weights, sentence_inputs):
    layer = hub.KerasLayer(minilm.path, trainable=True)
    inputs = {k: tf.constant(v) for k, v in sentence_inputs.items()}
    before = layer(inputs, training=False)["pooled_output"].numpy()
    float_tensors = {k: v for k, v in hf_weights.items() if v.dtype.kind == "f"}
    assert len(layer.trainable_weights) == len(float_tensors)
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == sum(v.size for v in float_tensors.values())
    assert [w.name for w in layer.non_trainable_weights] == ["do_lower_case:0"]

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs, training=False)["pooled_output"][:, :8])
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads)
    tf_keras.optimizers.SGD(learning_rate=0.05).apply_gradients(zip(grads, layer.trainable_weights, strict=True))
    after = layer(inputs, training=False)["pooled_output"].numpy()
    assert np.abs(after - before).max() > 1e-3
    assert after[:, :8].sum() < before[:, :8].sum()  # a descent step lowered the loss


def test_training_flag_controls_dropout(minilm, sentence_inputs):
    layer = hub.KerasLayer(minilm.path, trainable=True)  # hub passes `training` on only to trainable layers
    eval_1 = run_encoder(layer, sentence_inputs, training=False)["sequence_output"]
    eval_2 = run_encoder(layer, sentence_inputs, training=False)["sequence_output"]
    np.testing.assert_array_equal(eval_1, eval_2)
    train_1 = run_encoder(layer, sentence_inputs, training=True)["sequence_output"]
    train_2 = run_encoder(layer, sentence_inputs, training=True)["sequence_output"]
    assert np.abs(train_1 - eval_1).max() > 0.1
    assert np.abs(train_1 - train_2).max() > 0.1


def test_tfhub_attributes_and_signature(minilm, minilm_checkpoint_dir):
    loaded = hub.load(minilm.path)
    assert isinstance(loaded.vocab_file, tf.saved_model.Asset)
    vocab_path = loaded.vocab_file.asset_path.numpy().decode()
    assert Path(vocab_path).read_bytes() == (minilm_checkpoint_dir / "vocab.txt").read_bytes()
    assert isinstance(loaded.do_lower_case, tf.Variable)
    assert loaded.do_lower_case.dtype == tf.bool and not loaded.do_lower_case.trainable
    assert bool(loaded.do_lower_case.numpy()) is True
    assert (minilm.vocab_file, minilm.do_lower_case, minilm.hidden_size) == (vocab_path, True, 384)

    serve = loaded.signatures["serving_default"]
    out = serve(
        input_word_ids=tf.constant([[101, 7592, 102]]),
        input_mask=tf.ones([1, 3], tf.int32),
        input_type_ids=tf.zeros([1, 3], tf.int32),
    )
    assert set(out) == {"pooled_output", "sequence_output", "default"}
    assert out["sequence_output"].shape == (1, 3, 384)


# ----------------------------------------------------------------------------------------------------------------------
# Conversion options and the checkpoint layout variants


def test_tiny_checkpoint_with_prefix_and_no_pooler(tiny_checkpoint, tmp_path, caplog):
    caplog.set_level("INFO", logger=hf_to_tfhub.__name__)
    resolved = resolve_encoder(str(tiny_checkpoint), tmp_path)
    assert "no pooler.dense weights" in caplog.text
    assert "cls.predictions.bias" in caplog.text  # reported as unused
    assert Path(resolved.path).parent == tmp_path and Path(resolved.path).name.startswith("tiny-bert-")
    assert (resolved.hidden_size, resolved.do_lower_case) == (32, True)
    info = json.loads((Path(resolved.path) / "conversion.json").read_text())
    assert info["pooler"] == "identity-init"

    config = json.loads((tiny_checkpoint / "config.json").read_text())
    weights = load_file(str(tiny_checkpoint / "model.safetensors"))
    inputs = tokenize(resolved.vocab_file, resolved.do_lower_case, SENTENCES, seq_len=32)
    got = run_encoder(hub.KerasLayer(resolved.path), inputs)
    want = numpy_bert(weights, config, **reference_args(inputs))
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=ATOL, rtol=RTOL)

    # The cache key follows the files: touching the weights means converting again, into a new entry.
    os.utime(tiny_checkpoint / "model.safetensors", ns=(1_000_000_000, 1_000_000_000))
    assert resolve_encoder(str(tiny_checkpoint), tmp_path).path != resolved.path


def test_num_layers_truncation_and_incomplete_cache(hf_weights, hf_config, tmp_path, monkeypatch):
    target = tmp_path / "all-MiniLM-L6-v2-L1"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"half-written")  # looks like a SavedModel, but no completion marker
    calls = []
    real_convert = handles_module.convert
    monkeypatch.setattr(handles_module, "convert", lambda *a, **kw: calls.append(kw) or real_convert(*a, **kw))
    resolved = resolve_encoder("minilm", tmp_path, num_layers=1)
    assert calls == [{"num_layers": 1, "overwrite": True}]
    assert resolved.path == str(target) and hf_to_tfhub.is_complete_conversion(target)

    inputs = tokenize(resolved.vocab_file, resolved.do_lower_case, SENTENCES[:3], seq_len=16)
    got = run_encoder(hub.KerasLayer(resolved.path), inputs)
    assert len(got["encoder_outputs"]) == 1
    want = numpy_bert(hf_weights, hf_config, **reference_args(inputs), num_layers=1)
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=ATOL, rtol=RTOL)
    for bad in (0, hf_config["num_hidden_layers"] + 1):
        with pytest.raises(ValueError, match="num_layers"):
            resolve_encoder(None, tmp_path, num_layers=bad)


def test_second_resolution_reuses_the_conversion(minilm, cache_dir, hf_config, monkeypatch, caplog):
    monkeypatch.setattr(handles_module, "convert", lambda *a, **kw: pytest.fail("converted again"))
    caplog.set_level("INFO", logger=handles_module.__name__)
    assert resolve_encoder("minilm", cache_dir) == minilm
    assert "Reusing converted encoder" in caplog.text
    assert resolve_encoder("", cache_dir) == minilm
    # num_layers equal to the model's depth is the full model, not a separate "-L6" cache entry.
    assert resolve_encoder(None, cache_dir, num_layers=hf_config["num_hidden_layers"]) == minilm
    assert sorted(p.name for p in cache_dir.iterdir()) == ["all-MiniLM-L6-v2"]


def test_crash_during_save_leaves_nothing_that_looks_complete(minilm_checkpoint_dir, tmp_path, monkeypatch):
    def crashing_save(model, export_dir, **kwargs):
        Path(export_dir).mkdir(parents=True)
        (Path(export_dir) / "saved_model.pb").write_bytes(b"partial")
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(hf_to_tfhub.tf.saved_model, "save", crashing_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        convert(minilm_checkpoint_dir, tmp_path / "out", num_layers=1)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(minilm_checkpoint_dir, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="overwrite"):
        convert(minilm_checkpoint_dir, tmp_path / "out")


def test_cli_converts_and_refuses_to_clobber(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "cli-out"
    assert hf_to_tfhub.main([str(tiny_checkpoint), str(out), "--num-layers", "1", "--no-lower-case"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    info = json.loads((out / "conversion.json").read_text())
    assert (info["num_layers"], info["source_num_layers"], info["do_lower_case"]) == (1, 2, False)
    assert hf_to_tfhub.main([str(tiny_checkpoint), str(out)]) == 2
    assert "overwrite" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------------
# Handle resolution: SavedModels, URLs, bad paths


def test_local_savedmodel_is_used_as_is_and_described_from_the_model(minilm, tmp_path):
    copy = tmp_path / "plain_savedmodel"
    shutil.copytree(minilm.path, copy)
    (copy / "conversion.json").unlink()  # like an official TF Hub download: only the SavedModel's own attributes
    resolved = resolve_encoder(str(copy), tmp_path / "cache")
    assert resolved.path == str(copy)
    assert resolved.vocab_file == str(copy / "assets" / "vocab.txt")
    assert (resolved.do_lower_case, resolved.hidden_size) == (True, 384)
    assert not (tmp_path / "cache").exists()  # nothing converted
    with pytest.raises(ValueError, match="num_layers"):
        resolve_encoder(str(copy), tmp_path / "cache", num_layers=2)


def test_url_without_network_gives_a_clear_error(tmp_path, monkeypatch):
    def offline(handle):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(handles_module.hub, "resolve", offline)
    url = "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-512_A-8/2"
    with pytest.raises(ConnectionError, match="unreachable") as excinfo:
        resolve_encoder(url, tmp_path)
    assert "minilm" in str(excinfo.value) and "local path" in str(excinfo.value)


def test_url_resolves_through_tensorflow_hub(minilm, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(handles_module.hub, "resolve", lambda handle: seen.append(handle) or minilm.path)
    url = "https://www.kaggle.com/models/tensorflow/bert/TensorFlow2/en-uncased-l-12-h-768-a-12/3"
    resolved = resolve_encoder(url, tmp_path)
    assert seen == [url]
    assert (resolved.path, resolved.handle, resolved.hidden_size) == (minilm.path, url, 384)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda d: d / "does-not-exist", FileNotFoundError, "not an existing path"),
        (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", ValueError, "is a file"),
        (lambda d: d, ValueError, "neither a TF Hub SavedModel"),
        (lambda d: (d / "config.json").write_text("{}") and d, ValueError, "neither a TF Hub SavedModel"),
    ],
    ids=["missing", "file", "empty-dir", "config-without-weights"],
)
def test_bad_handles_give_clear_errors(tmp_path, make, error, message):
    handle_dir = tmp_path / "handle"
    handle_dir.mkdir()
    with pytest.raises(error, match=message):
        resolve_encoder(str(make(handle_dir)), tmp_path / "cache")


def test_checkpoint_missing_vocab_or_weights_is_reported(tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        convert(broken, tmp_path / "out")
    weights = load_file(str(tiny_checkpoint / "model.safetensors"))
    del weights["bert.encoder.layer.1.output.dense.weight"]
    shutil.copy(tiny_checkpoint / "vocab.txt", broken / "vocab.txt")
    save_file(weights, str(broken / "model.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.output\.dense\.weight"):
        convert(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
