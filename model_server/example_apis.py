"""Classify, Regress and MultiInference: TF Serving's tf.Example APIs, as ``classifier.cc``, ``regressor.cc`` and
``multi_inference.cc`` behave.

A classification signature takes one input, ``inputs`` (serialized ``tf.Example`` strings), and has outputs
``classes`` (string ``[batch, k]``) and/or ``scores`` (float ``[batch, k]``); a regression signature takes ``inputs``
and has one output, ``outputs`` (float ``[batch]`` or ``[batch, 1]``). Like TF Serving (whose
``--enable_signature_method_name_check`` is off by default, because TF2's saver writes the predict method name on
every signature) a signature qualifies by that structure; with the check on, its ``method_name`` must say
``tensorflow/serving/classify`` / ``…/regress``. Checks, codes and messages follow TF Serving's code; the signatures
run through the data plane (validation, batching, request log), one call per signature.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence

import numpy as np

from model_server.errors import InvalidArgument, Unimplemented
from model_server.model import DEFAULT_SIGNATURE, ServableModel, SignatureInfo
from model_server.tensors import BY_NUMPY

# tf.saved_model.signature_constants, the names TF Serving's APIs look for.
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"

ExamplesDecoder = Callable[[], np.ndarray]  # the request's serialized tf.Examples, decoded when TF Serving does
SignatureRunner = Callable[[ServableModel, SignatureInfo, dict[str, np.ndarray]], Awaitable[dict[str, np.ndarray]]]


@dataclasses.dataclass(frozen=True)
class Classifications:
    """Per example, per class: a label (``classes``) and/or a score (``scores``); the missing one is ``None``."""

    labels: np.ndarray | None  # [examples, classes] bytes
    scores: np.ndarray | None  # [examples, classes] float32

    @property
    def shape(self) -> tuple[int, int]:
        arr = self.labels if self.labels is not None else self.scores
        assert arr is not None
        return int(arr.shape[0]), int(arr.shape[1])


@dataclasses.dataclass(frozen=True)
class Regressions:
    values: np.ndarray  # [examples] float32


@dataclasses.dataclass(frozen=True)
class InferenceTask:
    """One task of a MultiInference request (or the single task of Classify / Regress)."""

    signature_name: str  # "" means serving_default
    method_name: str  # CLASSIFY_METHOD_NAME or REGRESS_METHOD_NAME


@dataclasses.dataclass(frozen=True)
class TaskResult:
    task: InferenceTask
    signature: SignatureInfo
    result: Classifications | Regressions


@dataclasses.dataclass(frozen=True)
class ExamplesResult:
    model: ServableModel
    results: list[TaskResult]
    num_examples: int


def signature_debug_string(model: ServableModel, name: str) -> str:
    """The SignatureDef in text format, as TF Serving's ``SignatureDef::DebugString()`` quotes it in errors."""
    from google.protobuf import text_format

    defs = model.signature_def_map
    if defs is None or name not in defs.signature_def:
        return ""
    return str(text_format.MessageToString(defs.signature_def[name]))


def _method_error(kind: str, want: str, sig: SignatureInfo) -> InvalidArgument:
    return InvalidArgument(f"Expected {kind} signature method_name to be {want}. Was: {sig.method_name}")


def check_classification(model: ServableModel, sig: SignatureInfo, method_check: bool) -> None:
    """``PreProcessClassification``: one ``inputs`` input, one or two outputs among ``classes`` / ``scores``."""
    if method_check and sig.method_name != CLASSIFY_METHOD_NAME:
        raise _method_error("classification", CLASSIFY_METHOD_NAME, sig)
    if len(sig.inputs) != 1:
        raise InvalidArgument("Expected one input Tensor.")
    if len(sig.outputs) not in (1, 2):
        raise InvalidArgument(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    if CLASSIFY_INPUTS not in sig.inputs:
        raise InvalidArgument(
            f"No classification inputs found in SignatureDef: {signature_debug_string(model, sig.name)}"
        )
    if CLASSIFY_OUTPUT_CLASSES not in sig.outputs and CLASSIFY_OUTPUT_SCORES not in sig.outputs:
        raise InvalidArgument(
            f'Expected classification signature outputs to contain at least one of "{CLASSIFY_OUTPUT_CLASSES}" or '
            f'"{CLASSIFY_OUTPUT_SCORES}". Signature was: {signature_debug_string(model, sig.name)}'
        )


def check_regression(model: ServableModel, sig: SignatureInfo, method_check: bool) -> None:
    """``PreProcessRegression``: one ``inputs`` input, one ``outputs`` output."""
    if method_check and sig.method_name != REGRESS_METHOD_NAME:
        raise _method_error("regression", REGRESS_METHOD_NAME, sig)
    if len(sig.inputs) != 1:
        raise InvalidArgument("Expected one input Tensor.")
    if len(sig.outputs) != 1:
        raise InvalidArgument("Expected one output Tensor.")
    if REGRESS_INPUTS not in sig.inputs:
        raise InvalidArgument(f"No regression inputs found in SignatureDef: {signature_debug_string(model, sig.name)}")
    if REGRESS_OUTPUTS not in sig.outputs:
        raise InvalidArgument(f"No regression outputs found in SignatureDef: {signature_debug_string(model, sig.name)}")


_CHECKS = {CLASSIFY_METHOD_NAME: check_classification, REGRESS_METHOD_NAME: check_regression}


def _single_task_signature(model: ServableModel, task: InferenceTask, method_check: bool) -> SignatureInfo:
    """``GetClassificationSignatureDef`` / ``GetRegressionSignatureDef``: unknown signature, then method or shape."""
    name = task.signature_name or DEFAULT_SIGNATURE
    sig = model.signatures.get(name)
    if sig is None:
        raise InvalidArgument(f"No signature was found with the name: {name}")
    _CHECKS[task.method_name](model, sig, method_check)  # with the check on, the method name comes first
    return sig


def _multi_task_signatures(
    model: ServableModel, tasks: Sequence[tuple[str, InferenceTask]], method_check: bool
) -> list[SignatureInfo]:
    """``TensorFlowMultiInferenceRunner::Infer``'s checks: one model, distinct known signatures, known methods."""
    seen: set[str] = set()
    signatures = []
    for model_name, task in tasks:
        if not model_name:
            raise InvalidArgument("Found ModelSpec with an empty model name.")
        if model_name != model.name:
            raise InvalidArgument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        name = task.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            raise InvalidArgument(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        sig = model.signatures.get(name)
        if sig is None:
            raise InvalidArgument(f"Requested signature not found in model graph: {name}")
        check = _CHECKS.get(task.method_name)
        if check is None:
            raise Unimplemented(f"Unsupported signature method_name: {task.method_name}")
        check(model, sig, method_check)
        signatures.append(sig)
    return signatures


def _dims(arr: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in arr.shape) + "]"


def _dt_name(arr: np.ndarray) -> str:
    """TF's ``DataType_Name`` of an output array (``DT_INT64``), as TF Serving's messages say it."""
    from tensorflow.core.framework import types_pb2

    d = BY_NUMPY.get(arr.dtype)
    return str(types_pb2.DataType.Name(d.enum)) if d is not None else str(arr.dtype)


def classifications(outputs: Mapping[str, np.ndarray], n: int) -> Classifications:
    """``PostProcessClassificationResult``: check the outputs' shapes and types, pair labels with scores."""
    labels = outputs.get(CLASSIFY_OUTPUT_CLASSES)
    scores = outputs.get(CLASSIFY_OUTPUT_SCORES)
    if labels is not None:
        if labels.ndim != 2:
            raise InvalidArgument(f"Expected Tensor shape: [batch_size num_classes] but got {_dims(labels)}")
        if labels.dtype != object:
            raise InvalidArgument(f"Expected classes Tensor of DT_STRING. Got: {_dt_name(labels)}")
        if labels.shape[0] != n:
            raise InvalidArgument(f"Expected classes output batch size of {n}. Got: {labels.shape[0]}")
    if scores is not None:
        if scores.ndim != 2:
            raise InvalidArgument(f"Expected Tensor shape: [batch_size num_classes] but got {_dims(scores)}")
        if scores.dtype != np.float32:
            raise InvalidArgument(f"Expected scores Tensor of DT_FLOAT. Got: {_dt_name(scores)}")
        if scores.shape[0] != n:
            raise InvalidArgument(f"Expected scores output batch size of {n}. Got: {scores.shape[0]}")
    if labels is not None and scores is not None and labels.shape[1] != scores.shape[1]:
        raise InvalidArgument(
            f"Tensors class and score should match in dim_size(1). Got {labels.shape[1]} vs. {scores.shape[1]}"
        )
    return Classifications(labels, scores)


def regressions(outputs: Mapping[str, np.ndarray], n: int) -> Regressions:
    """``PostProcessRegressionResult``: a float ``[batch]`` or ``[batch, 1]`` output, one value per example."""
    values = outputs[REGRESS_OUTPUTS]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise InvalidArgument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_dims(values)}"
        )
    if values.shape[0] != n:
        raise InvalidArgument(f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}")
    if values.dtype != np.float32:
        raise InvalidArgument(f"Expected output Tensor of DT_FLOAT.  Got: {_dt_name(values)}")
    return Regressions(values.reshape(n))


async def _run_tasks(
    model: ServableModel,
    tasks: Sequence[InferenceTask],
    signatures: Sequence[SignatureInfo],
    examples: ExamplesDecoder,
    run: SignatureRunner,
) -> ExamplesResult:
    """Feed the same serialized examples to every task's signature (in parallel) and shape each answer."""
    serialized = examples()
    n = int(serialized.shape[0])
    if n == 0:
        raise InvalidArgument("Input is empty.")
    outputs = await asyncio.gather(*(run(model, sig, {next(iter(sig.inputs)): serialized}) for sig in signatures))
    results = []
    for task, sig, out in zip(tasks, signatures, outputs, strict=True):
        result = classifications(out, n) if task.method_name == CLASSIFY_METHOD_NAME else regressions(out, n)
        results.append(TaskResult(task, sig, result))
    return ExamplesResult(model, results, n)


async def run_single(
    model: ServableModel, task: InferenceTask, examples: ExamplesDecoder, run: SignatureRunner, method_check: bool
) -> ExamplesResult:
    """Classify or Regress on one signature."""
    sig = _single_task_signature(model, task, method_check)
    return await _run_tasks(model, [task], [sig], examples, run)


async def run_multi(
    model: ServableModel,
    tasks: Sequence[tuple[str, InferenceTask]],
    examples: ExamplesDecoder,
    run: SignatureRunner,
    method_check: bool,
) -> ExamplesResult:
    """MultiInference: ``(model name, task)`` pairs on one input; the model is the one the first task names."""
    signatures = _multi_task_signatures(model, tasks, method_check)
    return await _run_tasks(model, [task for _, task in tasks], signatures, examples, run)
