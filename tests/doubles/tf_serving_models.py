"""Test doubles: TF Serving's own test models, rebuilt by the tests in a second.

TF Serving tests its model server against small SavedModels written by TF1 scripts
(``tensorflow_serving/servables/tensorflow/testdata/saved_model_half_plus_two.py``). These builders write models of
the same shape, with the same signature keys, tensor names and shapes, so our tests ask the questions TF Serving's
documentation and clients ask (the quick start's ``{"instances": [1.0, 2.0, 5.0]}``, ``classify_x_to_y``, ...):

- :func:`build_half_plus_two`: a TF1 graph (``tf.compat.v1.saved_model.Builder``), ``y = 0.5 * x + 2``, with
  predict, classify and regress signatures over ``x`` or serialized ``tf.Example`` input, an asset and a main op.
- :func:`build_two_versions`: ``base/123`` and ``base/124``, as ``saved_model_half_plus_two_2_versions``.
- :func:`build_half_plus_three`: ``y = 0.5 * x + 3`` whose ``ParseExample`` graph only TF's TF1 loader serves.
- :func:`build_tf2_half_plus_two`: the same function as a TF2 ``tf.Module``.
- :func:`build_tf1_vocab_lookup`: a TF1 lookup table initialised from an asset file; :func:`write_x_warmup_requests`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Signature keys and tensor names of TF Serving's half_plus_two (tf.saved_model.signature_constants values).
PREDICT_SIGNATURE = "serving_default"
CLASSIFY_X_TO_Y = "classify_x_to_y"
CLASSIFY_X2_TO_Y3 = "classify_x2_to_y3"
REGRESS_X_TO_Y = "regress_x_to_y"
REGRESS_X_TO_Y2 = "regress_x_to_y2"
REGRESS_X2_TO_Y3 = "regress_x2_to_y3"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"
EXAMPLES_INPUT = "inputs"  # CLASSIFY_INPUTS / REGRESS_INPUTS
SCORES_OUTPUT = "scores"  # CLASSIFY_OUTPUT_SCORES
REGRESS_OUTPUT = "outputs"  # REGRESS_OUTPUTS
ASSET_FILE = "foo.txt"
ASSET_CONTENTS = "asset-file-contents"
TWO_VERSIONS = (123, 124)  # saved_model_half_plus_two_2_versions
OLD_PRODUCER = 20  # a GraphDef written by an old TensorFlow: its import tolerates shape-inference errors


def half_plus(x: float, b: float = 2.0) -> float:
    """The models' answer, computed independently: ``0.5 * x + b``."""
    return 0.5 * x + b


def example(**features: float) -> bytes:
    """A serialized ``tf.Example`` with one float per feature (``x``, ``x2``), as classify/regress take."""
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    for key, value in features.items():
        ex.features.feature[key].float_list.value.append(value)
    return bytes(ex.SerializeToString())


def build_half_plus_two(
    export_dir: str,
    b: float = 2.0,
    c: float = 3.0,
    tags: Sequence[str] = ("serve",),
    as_text: bool = False,
    use_main_op: bool = True,
) -> str:
    """TF Serving's half_plus_two: ``y = a*x + b``, ``y2 = a*x + c``, ``y3 = a*x2 + c`` with ``a = 0.5``.

    ``x`` and ``x2`` are parsed from serialized ``tf.Example``s (placeholder ``tf_example``, shape ``[-1]``) and
    have shape ``[-1, 1]``; ``serving_default`` maps ``x`` (an intermediate tensor, fed directly) to ``y``. ``tags``
    is the MetaGraphDef's tag set (for ``--saved_model_tags`` tests); ``use_main_op=False`` stores the asset
    initialisation as ``legacy_init_op`` instead, the older TF1 spelling TF Serving also runs.
    """
    return _build_tf1(export_dir, b, c, tags, as_text, use_main_op, v1_parse_example=False)


def build_half_plus_three(export_dir: str) -> str:
    """TF Serving's half_plus_three (``y = 0.5*x + 3``): a TF1 graph that ``tf.saved_model.load`` rejects.

    Like the model in TF Serving's testdata it was "written by an old TensorFlow": a ``ParseExample`` (v1) op reads a
    placeholder declared as a scalar, and the GraphDef's producer version is old enough that TensorFlow's graph import
    tolerates the shape error. TF2's loader re-traces the graph into functions and fails with "Shape must be rank 1
    but is rank 0 ... ParseExample"; TF's TF1 loader (and TF Serving) import it and serve it.
    """
    _build_tf1(export_dir, 3.0, 4.0, ("serve",), False, True, v1_parse_example=True)
    _make_old_scalar_placeholder(export_dir, "tf_example")
    return export_dir


def build_two_versions(base_path: str, b_values: Sequence[float] = (2.0, 3.0)) -> list[str]:
    """``base_path/123`` and ``base_path/124`` (TF Serving's two-version layout); version i uses ``b_values[i]``.

    The default gives the versions different answers (2.5 and 3.5 for x = 1), so a test can tell which one served.
    """
    return [
        build_half_plus_two(os.path.join(base_path, str(v)), b=b) for v, b in zip(TWO_VERSIONS, b_values, strict=True)
    ]


def build_tf2_half_plus_two(export_dir: str, b: float = 2.0) -> str:
    """The same function as a TF2 ``tf.Module`` (object graph, concrete function): ``x`` ``[-1, 1]`` -> ``y``.

    Served by the TF2 path; TF Serving still feeds its MetaGraphDef by tensor name, so the quick start's ``[3]``-shaped
    ``x`` works here too.
    """
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(0.5, name="a")
            self.b = tf.Variable(b, name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])  # type: ignore[untyped-decorator]
        def serve(self, x: Any) -> dict[str, Any]:
            return {"y": self.a * x + self.b}

    module = HalfPlusTwo()
    tf.saved_model.save(module, export_dir, signatures={PREDICT_SIGNATURE: module.serve.get_concrete_function()})
    return export_dir


def build_tf1_vocab_lookup(export_dir: str, words: Sequence[str], legacy_init_op: bool = False) -> str:
    """A TF1 model whose answer depends on an asset: ``serving_default`` maps ``word`` (string) to ``id`` (int64),
    its line number in ``assets/vocab.txt`` (-1 if absent), via a lookup table that the init op fills from the file.

    Served correctly only where the loader points the asset at the version's own ``assets/`` directory and runs the
    init op (``main_op``, or ``legacy_init_op``): the file it was built from is deleted once the model is written.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with tempfile.TemporaryDirectory() as scratch, graph.as_default(), v1.Session(graph=graph) as sess:
        vocab = os.path.join(scratch, "vocab.txt")
        with open(vocab, "w", encoding="utf-8") as f:
            f.write("".join(f"{w}\n" for w in words))
        vocab_tensor = tf.constant(vocab)
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab_tensor)
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab_tensor,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            -1,
        )
        word = v1.placeholder(tf.string, [None], name="word")
        ids = tf.identity(table.lookup(word), name="id")
        predict = v1.saved_model.build_signature_def({"word": _info(word)}, {"id": _info(ids)}, PREDICT_METHOD)
        init = v1.tables_initializer()
        sess.run(init)
        builder = v1.saved_model.Builder(export_dir)
        builder.add_meta_graph_and_variables(
            sess,
            ["serve"],
            signature_def_map={PREDICT_SIGNATURE: predict},
            assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
            **({"legacy_init_op": init} if legacy_init_op else {"main_op": init}),
        )
        builder.save()
    return export_dir


def write_x_warmup_requests(export_dir: str, xs: Sequence[float], signature: str = PREDICT_SIGNATURE) -> str:
    """TF Serving's warm-up file (``assets.extra/tf_serving_warmup_requests``): one predict request per ``x``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = os.path.join(export_dir, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for x in xs:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([[x]], dtype=tf.float32))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


# --- internals ---------------------------------------------------------------------------------------------------


def _build_tf1(
    export_dir: str,
    b: float,
    c: float,
    tags: Sequence[str],
    as_text: bool,
    use_main_op: bool,
    v1_parse_example: bool,
) -> str:
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with tempfile.TemporaryDirectory() as scratch, graph.as_default(), v1.Session(graph=graph) as sess:
        a = v1.Variable(0.5, name="a")
        b_var = v1.Variable(b, name="b")
        c_var = v1.Variable(c, name="c")
        serialized = v1.placeholder(tf.string, name="tf_example", shape=None if v1_parse_example else [None])
        parsed = _parse_x_x2(serialized, v1_parse_example)
        x = tf.identity(parsed["x"], name="x")
        x2 = tf.identity(parsed["x2"], name="x2")
        y = tf.identity(a * x + b_var, name="y")
        y2 = tf.identity(a * x + c_var, name="y2")
        # separate variables for x2, as TF Serving's script keeps optimizers from fusing the y and y3 paths
        y3 = tf.identity(v1.Variable(0.5, name="a2") * x2 + v1.Variable(c, name="c2"), name="y3")
        assets, init_asset = _asset(scratch)
        predict = v1.saved_model.build_signature_def({"x": _info(x)}, {"y": _info(y)}, PREDICT_METHOD)
        signatures = {
            PREDICT_SIGNATURE: predict,
            REGRESS_X_TO_Y: _regress(serialized, y),
            REGRESS_X_TO_Y2: _regress(serialized, y2),
            REGRESS_X2_TO_Y3: _regress(x2, y3),
            CLASSIFY_X_TO_Y: _classify(serialized, y),
            CLASSIFY_X2_TO_Y3: _classify(x2, y3),
        }
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(export_dir)
        init = {"main_op": tf.group(init_asset)} if use_main_op else {"legacy_init_op": tf.group(init_asset)}
        builder.add_meta_graph_and_variables(
            sess, list(tags), signature_def_map=signatures, assets_collection=assets, **init
        )
        builder.save(as_text)
    return export_dir


def _parse_x_x2(serialized: Any, v1_op: bool) -> Mapping[str, Any]:
    """Features ``x`` (required) and ``x2`` (default 0.0), each ``[1]`` float, as TF Serving's script parses them."""
    import tensorflow as tf

    if not v1_op:
        return tf.compat.v1.parse_example(
            serialized,
            {
                "x": tf.io.FixedLenFeature([1], tf.float32),
                "x2": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
            },
        )
    # the ParseExample op of TF 1.x (today's parse_example emits ParseExampleV2)
    out = tf.raw_ops.ParseExample(
        serialized=serialized,
        names=tf.constant([], tf.string),
        sparse_keys=[],
        dense_keys=[tf.constant("x"), tf.constant("x2")],
        dense_defaults=[tf.constant([], tf.float32), tf.constant([0.0], tf.float32)],
        sparse_types=[],
        dense_shapes=[[1], [1]],
    )
    return {"x": out.dense_values[0], "x2": out.dense_values[1]}


def _asset(scratch: str) -> tuple[list[Any], Any]:
    """An asset file (the builder copies it into ``assets/``) and the op recording its name, run by the init op."""
    import tensorflow as tf

    v1 = tf.compat.v1
    path = os.path.join(scratch, ASSET_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(ASSET_CONTENTS)
    path_tensor = tf.constant(path)
    v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, path_tensor)
    filename = v1.Variable(ASSET_FILE, name="filename_tensor", trainable=False, collections=[])
    return v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS), filename.assign(ASSET_FILE)


def _info(tensor: Any) -> Any:
    import tensorflow as tf

    return tf.compat.v1.saved_model.build_tensor_info(tensor)


def _regress(inputs: Any, outputs: Any) -> Any:
    import tensorflow as tf

    return tf.compat.v1.saved_model.build_signature_def(
        {EXAMPLES_INPUT: _info(inputs)}, {REGRESS_OUTPUT: _info(outputs)}, REGRESS_METHOD
    )


def _classify(inputs: Any, scores: Any) -> Any:
    import tensorflow as tf

    return tf.compat.v1.saved_model.build_signature_def(
        {EXAMPLES_INPUT: _info(inputs)}, {SCORES_OUTPUT: _info(scores)}, CLASSIFY_METHOD
    )


def _make_old_scalar_placeholder(export_dir: str, name: str) -> None:
    """Rewrite the stored graph as an old TensorFlow wrote it: placeholder ``name`` a scalar, an old producer."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    for meta in model.meta_graphs:
        graph = meta.graph_def
        graph.versions.producer = OLD_PRODUCER
        for node in _nodes(graph.node, name):
            node.attr["shape"].shape.Clear()  # a known rank-0 shape
        for sig in meta.signature_def.values():
            for info in sig.inputs.values():
                if info.name == f"{name}:0":
                    info.tensor_shape.Clear()
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def _nodes(nodes: Iterable[Any], name: str) -> list[Any]:
    return [n for n in nodes if n.name == name]


# --- appended for the Classify / Regress tests (tests/model_server/test_classify_regress.py) -----------------------

TF2_CLASSIFY = "classify"
TF2_REGRESS = "regress"
TF2_BAD_CLASSES = "bad_classes"  # int64 `classes`: TF Serving's post-processing refuses it
TF2_LABELS = ("positive", "negative")


def sigmoid(x: float) -> float:
    """The TF2 example model's positive score, computed independently."""
    import math

    return 1.0 / (1.0 + math.exp(-x))


def build_tf2_example_model(export_dir: str) -> str:
    """A native TF2 model on serialized ``tf.Example``s (feature ``x``), written by ``tf.saved_model.save``, so every
    SignatureDef says ``tensorflow/serving/predict`` (TF Serving still classifies and regresses with it by default):

    - ``classify``: ``inputs`` -> ``classes`` ``[[positive, negative]]`` and ``scores`` ``[sigmoid(x), 1 - sigmoid(x)]``
    - ``regress``: ``inputs`` -> ``outputs`` ``0.5 * x + 2``, shape ``[batch]``
    - ``bad_classes``: ``inputs`` -> int64 ``classes``
    - ``serving_default``: ``x`` ``[-1, 1]`` -> ``y``, a predict signature
    """
    import tensorflow as tf

    spec = {"x": tf.io.FixedLenFeature([1], tf.float32)}
    examples = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)

    def parse(inputs: Any) -> Any:
        return tf.io.parse_example(inputs, spec)["x"][:, 0]

    @tf.function(input_signature=[examples])  # type: ignore[untyped-decorator]
    def classify(inputs: Any) -> dict[str, Any]:
        p = tf.sigmoid(parse(inputs))
        labels = tf.tile(tf.constant([list(TF2_LABELS)]), [tf.shape(p)[0], 1])
        return {"classes": labels, SCORES_OUTPUT: tf.stack([p, 1.0 - p], axis=1)}

    @tf.function(input_signature=[examples])  # type: ignore[untyped-decorator]
    def regress(inputs: Any) -> dict[str, Any]:
        return {REGRESS_OUTPUT: 0.5 * parse(inputs) + 2.0}

    @tf.function(input_signature=[examples])  # type: ignore[untyped-decorator]
    def bad_classes(inputs: Any) -> dict[str, Any]:
        return {"classes": tf.cast(parse(inputs), tf.int64)[:, None]}

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])  # type: ignore[untyped-decorator]
    def predict(x: Any) -> dict[str, Any]:
        return {"y": 0.5 * x + 2.0}

    module = tf.Module()
    functions = {TF2_CLASSIFY: classify, TF2_REGRESS: regress, TF2_BAD_CLASSES: bad_classes, PREDICT_SIGNATURE: predict}
    signatures = {name: fn.get_concrete_function() for name, fn in functions.items()}
    tf.saved_model.save(module, export_dir, signatures=signatures)
    return export_dir
