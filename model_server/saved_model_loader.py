"""A SavedModel loaded as TF Serving loads it: one MetaGraphDef chosen by its tags, in a session, run by tensor names.

TF Serving serves every SavedModel, TF1 or TF2, this way (``LoadSavedModel`` + ``Session::Run`` on the SignatureDef's
tensor names), so we do too rather than ``tf.saved_model.load``:

- inputs reach the graph as the client sent them: no Python-side check of the signature's static shape (TF2 concrete
  functions reject a ``[3]`` tensor for a ``[-1, 1]`` input; TF Serving's quick start sends exactly that), and errors
  are TensorFlow's own (``Expects arg[0] to be float but double is provided``, a kernel's shape error);
- TF1 graphs that TF2's loader cannot re-trace into functions load (TF Serving's ``half_plus_three`` fails under
  ``tf.saved_model.load`` with "Shape must be rank 1 but is rank 0 ... ParseExample");
- the init op (``main_op`` / ``legacy_init_op`` / TF2's ``__saved_model_init_op``), variables and assets are the TF1
  loader's (``tf.compat.v1.saved_model.loader.load``), the same code path TF Serving's C++ loader mirrors.

Measured on the pipeline's BERT model (``benchmarks`` figures in the README): a session callable is no slower than
the TF2 concrete function (13.3 vs 14.2 ms for one short text, 222 vs 239 ms for eight long reviews).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model_server import tensors
from model_server.errors import InvalidArgument

DEFAULT_TAGS = ("serve",)  # tf.saved_model.SERVING, TF Serving's --saved_model_tags default
INIT_OP_SIGNATURE = "__saved_model_init_op"  # TF2's init op, stored as a SignatureDef: not a serving signature


class ModelLoadError(Exception):
    """The version cannot be served (unreadable SavedModel, no signatures, failing warm-up)."""


def read_saved_model(path: str) -> Any:
    """The ``SavedModel`` proto (``saved_model.pb`` or ``saved_model.pbtxt``)."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    try:
        if os.path.exists(pb):
            with open(pb, "rb") as f:
                sm.ParseFromString(f.read())
        else:
            with open(os.path.join(path, "saved_model.pbtxt"), encoding="utf-8") as f:
                text_format.Parse(f.read(), sm)
    except Exception as exc:  # noqa: BLE001 - any proto failure means "this version cannot load"
        raise ModelLoadError(f"Cannot parse the SavedModel proto at {path}: {short_error(exc)}") from exc
    return sm


def find_meta_graph(saved_model: Any, tags: Sequence[str]) -> Any:
    """The MetaGraphDef whose tag set equals ``tags``; TensorFlow's loader message when none does."""
    wanted = set(tags)
    for meta in saved_model.meta_graphs:
        if set(meta.meta_info_def.tags) == wanted:
            return meta
    available = "; ".join("{ " + " ".join(sorted(m.meta_info_def.tags)) + " }" for m in saved_model.meta_graphs)
    raise ModelLoadError(
        "Could not find meta graph def matching supplied tags: { " + " ".join(sorted(wanted)) + " }. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`"
        + (f" (available tag-sets: {available})" if available else "")
    )


def session_config() -> Any:
    """Thread pools as ``--tensorflow_intra_op_parallelism`` / ``--tensorflow_inter_op_parallelism`` set them."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2

    return config_pb2.ConfigProto(
        intra_op_parallelism_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op_parallelism_threads=tf.config.threading.get_inter_op_parallelism_threads(),
        allow_soft_placement=True,
    )


class SessionBundle:
    """TF Serving's ``SavedModelBundle``: a graph, its session (variables restored, init op run) and its meta graph."""

    def __init__(self, path: str, tags: Sequence[str]):
        import tensorflow as tf

        self.path = path
        self.tags = tuple(tags)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config())
        try:
            with self._graph.as_default():
                self.meta_graph = tf.compat.v1.saved_model.loader.load(self._session, list(self.tags), path)
        except Exception:
            self._session.close()
            raise
        self._callables: dict[tuple[str, tuple[str, ...], tuple[str, ...]], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    @property
    def signature_defs(self) -> Mapping[str, Any]:
        return self.meta_graph.signature_def  # type: ignore[no-any-return]

    def run(self, signature: str, inputs: Mapping[str, np.ndarray], output_keys: Sequence[str]) -> dict[str, Any]:
        """Feed ``inputs`` (by input key) to the signature's tensors and fetch ``output_keys``, as TF Serving does."""
        feed_keys = tuple(sorted(inputs))
        fetch_keys = tuple(output_keys)
        fn, dtypes = self._callable(signature, feed_keys, fetch_keys)
        arrays = [inputs[k] for k in feed_keys]
        for array, (index, want) in zip(arrays, dtypes, strict=True):
            if array.dtype != want.numpy:
                raise InvalidArgument(_dtype_mismatch(index, want, array.dtype))
        values = fn(*arrays)
        return dict(zip(fetch_keys, values, strict=True))

    def _callable(
        self, signature: str, feeds: tuple[str, ...], fetches: tuple[str, ...]
    ) -> tuple[Any, list[tuple[int, tensors.DType]]]:
        """One compiled session callable per signature and key set (TF's ``Session::MakeCallable``), made once, with
        each feed's argument index (TF numbers a run's feeds in tensor-name order) and dtype, for TF's dtype check."""
        key = (signature, feeds, fetches)
        entry = self._callables.get(key)
        if entry is not None:
            return entry
        from tensorflow.core.protobuf import config_pb2

        sig = self.signature_defs[signature]
        names = [sig.inputs[k].name for k in feeds]
        order = sorted(names)
        dtypes = [(order.index(n), tensors.BY_ENUM[sig.inputs[k].dtype]) for n, k in zip(names, feeds, strict=True)]
        options = config_pb2.CallableOptions(feed=names, fetch=[sig.outputs[k].name for k in fetches])
        with self._lock:
            entry = self._callables.get(key)
            if entry is None:
                # the public make_callable checks feed shapes in Python (Session.run's check); TF Serving does not
                entry = (self._session._make_callable_from_options(options), dtypes)
                self._callables[key] = entry
        return entry

    def close(self) -> None:
        self._callables = {}
        self._session.close()


def _dtype_mismatch(index: int, want: tensors.DType, got: np.dtype) -> str:
    """TensorFlow's words when a session is fed the wrong dtype (what TF Serving answers, INVALID_ARGUMENT)."""
    found = tensors.BY_NUMPY.get(got)
    return f"Expects arg[{index}] to be {want.display} but {found.display if found else got.name} is provided"


def short_error(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception's text, for status messages and logs."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
