"""A test double: a tiny text-sentiment SavedModel with a `tokenize` signature, its ONNX graph and ONNX manifest.

The SavedModel has the pipeline's serving contract (`serving_default`: `text` -> `probability` float32 [batch],
`label` string [batch]) plus `tokenize` (`text` -> `input_word_ids` / `input_mask` / `input_type_ids` int64), both
through the pipeline's own `encode_reviews` (TF Text's BertTokenizer, head-and-tail truncation), so the server's fast
tokenizer is checked against the exporter's real rules. The network is a masked mean of word and type embeddings
through a dense unit and a sigmoid; `assets.extra/onnx/model.onnx` computes the same with `onnx.helper`
(`weight_shift` makes it disagree). It is a TF1-style graph (a session with a table initializer as main op), the
way Transform's graphs are built, since `encode_reviews` creates its vocabulary table where it is called.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import numpy as np

from model_server.hints import SignatureHints, write_serving_hints
from model_server.onnx_manifest import OnnxSignature, WordPieceSpec, write_onnx_manifest
from tests.doubles.tiny_bert import VOCAB

TEXT, PROBABILITY, LABEL = "text", "probability", "label"
TOKENIZE = "tokenize"
GRAPH = "assets.extra/onnx/model.onnx"
VOCAB_ASSET = "assets/vocab.txt"
MAX_SEQ_LENGTH = 16
HEAD_FRACTION = 0.25
HIDDEN = 8


def head_tokens(max_seq_length: int = MAX_SEQ_LENGTH, head_fraction: float = HEAD_FRACTION) -> int:
    return int(round((max_seq_length - 2) * head_fraction))  # encode_reviews' rule


def weights(vocab_size: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embeddings": rng.normal(0.0, 1.0, (vocab_size, HIDDEN)).astype(np.float32),
        "type_embeddings": rng.normal(0.0, 0.1, (2, HIDDEN)).astype(np.float32),
        "kernel": rng.normal(0.0, 1.5, (HIDDEN, 1)).astype(np.float32),
        "bias": np.array([0.1], dtype=np.float32),
    }


def build_onnx_sentiment_model(
    export_dir: str,
    *,
    weight_shift: float = 0.0,
    warmup_texts: Sequence[str] = (),
    manifest: bool = True,
    manifest_lower_case: bool = True,
    tolerance: float = 1e-5,
) -> str:
    """Write the SavedModel, graph, vocabulary asset, serving hints and (unless ``manifest=False``) the manifest."""
    import tensorflow as tf

    from pipeline_modules.transform_module import HTML_LINE_BREAK, encode_reviews

    os.makedirs(os.path.join(export_dir, "assets"), exist_ok=True)
    vocab_file = os.path.join(export_dir, "assets", "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    w = weights(len(VOCAB))
    staging = export_dir + ".saved_model"
    with tf.Graph().as_default():
        text = tf.compat.v1.placeholder(tf.string, [None], name=TEXT)
        encoded = encode_reviews(
            text,
            vocab_file=vocab_file,
            do_lower_case=True,
            max_seq_length=MAX_SEQ_LENGTH,
            head_fraction=HEAD_FRACTION,
        )
        mask = tf.cast(encoded["input_mask"], tf.float32)
        hidden = tf.gather(w["embeddings"], encoded["input_word_ids"])
        hidden += tf.gather(w["type_embeddings"], encoded["input_type_ids"])
        mean = tf.reduce_sum(hidden * mask[:, :, None], axis=1) / tf.reduce_sum(mask, axis=1, keepdims=True)
        probability = tf.sigmoid(tf.matmul(mean, w["kernel"]) + w["bias"])[:, 0]
        label = tf.where(probability >= 0.5, tf.constant("positive"), tf.constant("negative"))
        info = tf.compat.v1.saved_model.utils.build_tensor_info
        build = tf.compat.v1.saved_model.signature_def_utils.build_signature_def
        method = "tensorflow/serving/predict"
        signatures = {
            "serving_default": build({TEXT: info(text)}, {PROBABILITY: info(probability), LABEL: info(label)}, method),
            TOKENIZE: build({TEXT: info(text)}, {k: info(v) for k, v in encoded.items()}, method),
        }
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.tables_initializer())
            builder = tf.compat.v1.saved_model.Builder(staging)
            builder.add_meta_graph_and_variables(
                session, ["serve"], signature_def_map=signatures, main_op=tf.compat.v1.tables_initializer()
            )
            builder.save()
    for name in os.listdir(staging):
        shutil.move(os.path.join(staging, name), os.path.join(export_dir, name))
    os.rmdir(staging)
    write_serving_hints(export_dir, {"serving_default": SignatureHints(non_empty_text_inputs=(TEXT,))})
    write_onnx_graph(os.path.join(export_dir, GRAPH), w, weight_shift)
    if manifest:
        spec = WordPieceSpec(
            vocab=VOCAB_ASSET,
            lower_case=manifest_lower_case,
            max_seq_length=MAX_SEQ_LENGTH,
            head_tokens=head_tokens(),
            replacements=((HTML_LINE_BREAK, " "),),
        )
        sig = OnnxSignature(
            graph=GRAPH, text_input=TEXT, tokenize_signature=TOKENIZE, tolerance=tolerance, wordpiece=spec
        )
        write_onnx_manifest(export_dir, {"serving_default": sig})
    if warmup_texts:
        from tests.doubles.toy_model import write_warmup_file

        write_warmup_file(export_dir, warmup_texts)
    return export_dir


def write_onnx_graph(path: str, w: dict[str, np.ndarray], weight_shift: float = 0.0) -> str:
    """The network in ONNX (opset 17): token ids, mask and type ids [batch, any length] -> probability, label."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    initializers = [
        const("embeddings", w["embeddings"]),
        const("type_embeddings", w["type_embeddings"]),
        const("kernel", w["kernel"] + np.float32(weight_shift)),
        const("bias", w["bias"]),
        const("axis1", np.array([1], dtype=np.int64)),
        const("axis2", np.array([2], dtype=np.int64)),
        const("half", np.array(0.5, dtype=np.float32)),
        const("names", np.array([b"negative", b"positive"], dtype=object)),
    ]
    node = helper.make_node
    nodes = [
        node("Gather", ["embeddings", "input_word_ids"], ["words"]),
        node("Gather", ["type_embeddings", "input_type_ids"], ["types"]),
        node("Add", ["words", "types"], ["hidden"]),
        node("Cast", ["input_mask"], ["mask"], to=TensorProto.FLOAT),
        node("Unsqueeze", ["mask", "axis2"], ["mask3"]),
        node("Mul", ["hidden", "mask3"], ["masked"]),
        node("ReduceSum", ["masked", "axis1"], ["total"], keepdims=0),
        node("ReduceSum", ["mask", "axis1"], ["count"], keepdims=1),
        node("Div", ["total", "count"], ["mean"]),
        node("MatMul", ["mean", "kernel"], ["product"]),
        node("Add", ["product", "bias"], ["logit"]),
        node("Sigmoid", ["logit"], ["sigmoid"]),
        node("Squeeze", ["sigmoid", "axis1"], [PROBABILITY]),
        node("GreaterOrEqual", [PROBABILITY, "half"], ["positive"]),
        node("Cast", ["positive"], ["index"], to=TensorProto.INT64),
        node("Gather", ["names", "index"], [LABEL], axis=0),
    ]
    ids = ["input_word_ids", "input_mask", "input_type_ids"]
    graph = helper.make_graph(
        nodes,
        "tiny_sentiment",
        [helper.make_tensor_value_info(k, TensorProto.INT64, ["batch", "seq"]) for k in ids],
        [
            helper.make_tensor_value_info(PROBABILITY, TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info(LABEL, TensorProto.STRING, ["batch"]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)
    return path
