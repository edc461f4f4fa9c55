"""The ONNX graph (opset 17) of `build_encoder`'s BERT, and of the sentiment head on it, from the Keras weights.

Why by hand: the usual route to ONNX (PyTorch's exporter, tf2onnx) is not installable on this project's stacks, and
the encoder is small and regular enough to write down op by op with `onnx.helper`. The graph computes what
`pipeline_modules.encoder.layers` computes (same GELU variant, LayerNorm epsilon and padded-key bias), so ONNX Runtime
can run the very weights TensorFlow runs: the peers benchmark compares engines, not checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline_modules import features
from pipeline_modules.encoder.layers import _MASK_BIAS, INPUT_KEYS

OPSET = 17
POOLINGS = ("mean", "cls")
# Graph outputs: the encoder's (TF Hub names), the pooled vector the head reads, the head's logit and probability.
SEQUENCE_OUTPUT, POOLED_OUTPUT, POOLED, LOGIT, PROBABILITY = (
    "sequence_output",
    "pooled_output",
    "pooled",
    "logit",
    "probability",
)
# The serving signature's string output, on request only (`outputs`): "positive" where probability >= 0.5.
LABEL = features.LABEL_OUTPUT


class _Graph:
    """Nodes and initializers with unique names; each op returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, value: Any, name: str = "const", dtype: Any = np.float32) -> str:
        self._count += 1
        unique = f"{name}_{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), unique))
        return unique

    def op(self, op_type: str, *inputs: str, name: str | None = None, **attrs: Any) -> str:
        self._count += 1
        out = name or f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=f"{op_type}_{self._count}", **attrs))
        return out

    def dense(self, x: str, layer: Any, prefix: str) -> str:
        """Keras `Dense` without its activation: x @ kernel + bias (kernel is [in, out], as MatMul wants it)."""
        y = self.op("MatMul", x, self.const(layer.kernel.numpy(), f"{prefix}/kernel"))
        return self.op("Add", y, self.const(layer.bias.numpy(), f"{prefix}/bias"))

    def layer_norm(self, x: str, layer: Any, prefix: str) -> str:
        return self.op(
            "LayerNormalization",
            x,
            self.const(layer.gamma.numpy(), f"{prefix}/gamma"),
            self.const(layer.beta.numpy(), f"{prefix}/beta"),
            axis=-1,
            epsilon=float(layer.epsilon),
        )

    def activation(self, x: str, name: str) -> str:
        """`layers.ACTIVATIONS` in ONNX ops (opset 17 has no Gelu: erf and tanh forms written out)."""
        if name in ("gelu", "gelu_python"):
            erf = self.op("Erf", self.op("Mul", x, self.const(1.0 / math.sqrt(2.0))))
            return self.op("Mul", self.op("Mul", x, self.const(0.5)), self.op("Add", erf, self.const(1.0)))
        if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            cube = self.op("Mul", self.op("Mul", x, x), x)
            inner = self.op("Add", x, self.op("Mul", cube, self.const(0.044715)))
            tanh = self.op("Tanh", self.op("Mul", inner, self.const(math.sqrt(2.0 / math.pi))))
            return self.op("Mul", self.op("Mul", x, self.const(0.5)), self.op("Add", tanh, self.const(1.0)))
        if name == "quick_gelu":
            return self.op("Mul", x, self.op("Sigmoid", self.op("Mul", x, self.const(1.702))))
        if name in ("silu", "swish"):
            return self.op("Mul", x, self.op("Sigmoid", x))
        if name == "relu":
            return self.op("Relu", x)
        if name == "tanh":
            return self.op("Tanh", x)
        raise ValueError(f"No ONNX form for hidden_act {name!r}")


def _transformer_layer(g: _Graph, x: str, bias: str, layer: Any, prefix: str) -> str:
    """One `layers.TransformerLayer`: self-attention, residual + LayerNorm, feed-forward, residual + LayerNorm."""
    heads, head_size, hidden = layer.num_attention_heads, layer.head_size, layer.hidden_size
    split = g.const([0, 0, heads, head_size], "split_heads", np.int64)  # 0: keep batch and sequence dims as they are
    q = g.op("Transpose", g.op("Reshape", g.dense(x, layer.query, f"{prefix}/query"), split), perm=[0, 2, 1, 3])
    k = g.op("Transpose", g.op("Reshape", g.dense(x, layer.key, f"{prefix}/key"), split), perm=[0, 2, 3, 1])
    v = g.op("Transpose", g.op("Reshape", g.dense(x, layer.value, f"{prefix}/value"), split), perm=[0, 2, 1, 3])
    scores = g.op("Mul", g.op("MatMul", q, k), g.const(1.0 / math.sqrt(head_size)))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
    context = g.op("Reshape", context, g.const([0, 0, hidden], "merge_heads", np.int64))
    attended = g.dense(context, layer.attention_output, f"{prefix}/attention_output")
    x = g.layer_norm(g.op("Add", x, attended), layer.attention_layer_norm, f"{prefix}/attention_layer_norm")
    inner = g.activation(g.dense(x, layer.intermediate, f"{prefix}/intermediate"), layer.hidden_act)
    out = g.dense(inner, layer.output_dense, f"{prefix}/output")
    return g.layer_norm(g.op("Add", x, out), layer.output_layer_norm, f"{prefix}/output_layer_norm")


def _prune(nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto], outputs: Sequence[str]) -> Any:
    """Only the nodes (and weights) the requested outputs depend on: ONNX Runtime runs every node it is given."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    return list(reversed(kept)), [t for t in initializers if t.name in needed]


def _output_type(name: str) -> int:
    return int(TensorProto.STRING if name == LABEL else TensorProto.FLOAT)


def encoder_to_onnx(
    encoder: Any,
    *,
    pooling: str | None = "mean",
    head: Any = None,
    outputs: Sequence[str] | None = None,
    index_dtype: str = "int64",
) -> onnx.ModelProto:
    """The ONNX model of a `build_encoder` Keras model (`bert_encoder`), optionally with the sentiment head.

    `pooling`: "mean" (masked mean of `sequence_output`, `trainer.model.MaskedMeanPooling`) or "cls" (BERT's
    pooler), giving the `pooled` output; `head`: the Keras `Dense(1)` logit layer on it (`logit`, and
    `probability` = sigmoid, [batch] as the serving signature returns it; `label`, string [batch], only when asked
    for). `outputs` picks the graph outputs (default: all but `label`). Inputs: `input_word_ids`, `input_mask`,
    `input_type_ids`, [batch, seq], any size.
    """
    if pooling is not None and pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS} or None, got {pooling!r}")
    if head is not None and pooling is None:
        raise ValueError("the head reads a pooled vector: give pooling='mean' or 'cls'")
    if index_dtype not in ("int64", "int32"):
        raise ValueError(f"index_dtype must be int64 or int32, got {index_dtype!r}")
    g = _Graph()
    word_ids, mask, type_ids = INPUT_KEYS
    embeddings = encoder.get_layer("embeddings")
    x = g.op(
        "Add",
        g.op("Gather", g.const(embeddings.word_embeddings.numpy(), "word_embeddings"), word_ids),
        g.op("Gather", g.const(embeddings.token_type_embeddings.numpy(), "type_embeddings"), type_ids),
    )
    seq_len = g.op("Shape", word_ids, start=1, end=2)
    positions = g.op(
        "Slice",
        g.const(embeddings.position_embeddings.numpy(), "position_embeddings"),
        g.const([0], "zero", np.int64),
        seq_len,
        g.const([0], "axis0", np.int64),
    )
    x = g.layer_norm(g.op("Add", x, positions), embeddings.layer_norm, "embeddings/layer_norm")
    mask_f = g.op("Cast", mask, to=TensorProto.FLOAT)
    bias = g.op(
        "Unsqueeze",
        g.op("Mul", g.op("Sub", g.const(1.0), mask_f), g.const(_MASK_BIAS)),
        g.const([1, 2], "bias_axes", np.int64),
    )  # [batch, 1, 1, seq], as `layers.AttentionBias`
    i = 0
    while any(layer.name == f"transformer_layer_{i}" for layer in encoder.layers):
        x = _transformer_layer(g, x, bias, encoder.get_layer(f"transformer_layer_{i}"), f"transformer_layer_{i}")
        i += 1
    sequence = g.op("Identity", x, name=SEQUENCE_OUTPUT)
    pooler = encoder.get_layer("pooler")
    first = g.op("Gather", sequence, g.const(0, "first_token", np.int64), axis=1)
    g.op("Tanh", g.dense(first, pooler.dense, "pooler/dense"), name=POOLED_OUTPUT)
    available = [SEQUENCE_OUTPUT, POOLED_OUTPUT]
    if pooling == "mean":
        weights = g.op("Unsqueeze", mask_f, g.const([2], "mask_axis", np.int64))
        total = g.op("ReduceSum", g.op("Mul", sequence, weights), g.const([1], "seq_axis", np.int64), keepdims=0)
        count = g.op("ReduceSum", mask_f, g.const([1], "seq_axis", np.int64), keepdims=1)
        g.op("Div", total, g.op("Max", count, g.const(1.0)), name=POOLED)
        available.append(POOLED)
    elif pooling == "cls":
        g.op("Identity", POOLED_OUTPUT, name=POOLED)
        available.append(POOLED)
    if head is not None:
        g.dense(POOLED, head, "logit")
        g.nodes[-1].output[0] = LOGIT
        g.op("Squeeze", g.op("Sigmoid", LOGIT), g.const([1], "logit_axis", np.int64), name=PROBABILITY)
        # As export.py's `predict`: Gather on a string constant by the comparison (ONNX Runtime's CPU kernels take it).
        labels = g.const([features.NEGATIVE, features.POSITIVE], "labels", dtype=object)
        positive = g.op("Cast", g.op("GreaterOrEqual", PROBABILITY, g.const(0.5)), to=TensorProto.INT64)
        g.op("Gather", labels, positive, axis=0, name=LABEL)
        available += [LOGIT, PROBABILITY, LABEL]
    wanted = list(outputs) if outputs else [name for name in available if name != LABEL]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(f"unknown output(s) {unknown}; this graph has {available}")
    nodes, initializers = _prune(g.nodes, g.initializers, wanted)
    index = TensorProto.INT64 if index_dtype == "int64" else TensorProto.INT32
    hidden = int(embeddings.hidden_size)
    shapes: dict[str, list[str | int | None]] = {
        SEQUENCE_OUTPUT: ["batch", "seq", hidden],
        POOLED_OUTPUT: ["batch", hidden],
        POOLED: ["batch", hidden],
        LOGIT: ["batch", 1],
        PROBABILITY: ["batch"],
        LABEL: ["batch"],
    }
    graph = helper.make_graph(
        nodes,
        "bert_encoder",
        [helper.make_tensor_value_info(key, index, ["batch", "seq"]) for key in INPUT_KEYS],
        [helper.make_tensor_value_info(name, _output_type(name), shapes[name]) for name in wanted],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bert-imdb")
    model.ir_version = min(model.ir_version, 8)  # the IR of opset 17: older ONNX Runtimes refuse newer ones
    onnx.checker.check_model(model)
    return model


def sentiment_model_to_onnx(model: Any, **kwargs: Any) -> onnx.ModelProto:
    """The ONNX model of `trainer.model.build_model`'s Keras model (in-process encoder): text ids to probability."""
    try:
        encoder = model.get_layer("bert_encoder")
    except ValueError as e:
        raise ValueError("the model has no layer named bert_encoder") from e
    if not hasattr(encoder, "get_layer"):
        raise ValueError("the encoder is a restored SavedModel (hub.KerasLayer): only build_encoder's layers convert")
    pooling = "mean" if any(layer.name == "mean_pooling" for layer in model.layers) else "cls"
    return encoder_to_onnx(encoder, pooling=pooling, head=model.get_layer("logit"), **kwargs)


def quantize_dynamic_int8(model: onnx.ModelProto, workdir: str, *, per_channel: bool = False) -> onnx.ModelProto:
    """`onnxruntime.quantization.quantize_dynamic` (int8 weights, activations quantized per batch), as its users run it.

    Raises RuntimeError where the installed ONNX Runtime cannot import its quantizer (1.26 needs sympy).
    """
    import os

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise RuntimeError(f"onnxruntime.quantization is not importable here: {e}") from e
    source, target = os.path.join(workdir, "fp32.onnx"), os.path.join(workdir, "int8.onnx")
    onnx.save(model, source)
    quantize_dynamic(source, target, per_channel=per_channel, weight_type=QuantType.QInt8)
    return onnx.load(target)


__all__ = ["LABEL", "OPSET", "PROBABILITY", "encoder_to_onnx", "quantize_dynamic_int8", "sentiment_model_to_onnx"]
