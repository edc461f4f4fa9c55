"""An independent reference for the converted encoder: BERT in plain NumPy (float64), straight from the checkpoint's
tensors, plus the tokenization and pooling the encoder tests share."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text as text

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
