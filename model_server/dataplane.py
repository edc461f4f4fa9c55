"""The protocol-agnostic data plane: every REST and gRPC call becomes one of these methods.

Transports only translate wire formats; model lookup, input validation against the signature, batching, output
filtering and the request log live here once, so both protocols accept and refuse exactly the same requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from model_server import example_apis
from model_server.batching import BatchScheduler, DirectRunner
from model_server.errors import InvalidArgument, NotFound
from model_server.hints import EXPLAIN_SIGNATURE
from model_server.logs import RequestLog
from model_server.metrics import OTHER_MODEL
from model_server.model import ServableModel, SignatureInfo
from model_server.repository import ModelRepository, VersionStatus
from model_server.tensors import TensorInfo

# Decodes the request's inputs once the signature is known (JSON needs the dtypes to decode).
InputDecoder = Callable[[SignatureInfo], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """Which servable a request names: latest, a version, or a label (never both of the last two)."""

    name: str
    version: int | None = None
    label: str | None = None


@dataclasses.dataclass
class PredictResult:
    """What a predict call produced, and which servable and signature produced it."""

    model: ServableModel
    signature: SignatureInfo
    outputs: dict[str, np.ndarray]
    batch_size: int


@dataclasses.dataclass(frozen=True)
class PlaneOptions:
    max_instances_per_request: int = 1024
    allow_empty_text: bool = False  # accept empty strings in inputs the model's hints mark non_empty_text_inputs
    signature_method_name_check: bool = False  # --enable_signature_method_name_check (Classify/Regress/Multi)


class DataPlane:
    """The operations both transports expose, on the models of one repository."""

    def __init__(
        self,
        repository: ModelRepository,
        direct: DirectRunner,
        batcher: BatchScheduler | None,
        options: PlaneOptions,
        request_log: RequestLog | None = None,
    ) -> None:
        self.repository = repository
        self._direct = direct
        self._batcher = batcher
        self._opt = options
        self._request_log = request_log

    # --- lookups -------------------------------------------------------------------------------------------------

    def metric_model_label(self, name: str | None) -> str:
        """Model names for metric labels: only configured ones, so clients cannot mint new time series."""
        return name if name and self.repository.manager(name) is not None else OTHER_MODEL

    def model(self, ref: ModelRef) -> ServableModel:
        return self.repository.get_model(ref.name, ref.version, ref.label)

    def model_status(self, ref: ModelRef) -> list[VersionStatus]:
        return self.repository.status(ref.name, ref.version, ref.label)

    def model_metadata(self, ref: ModelRef) -> ServableModel:
        return self.model(ref)

    def ready(self) -> tuple[bool, dict[str, list[int]]]:
        return self.repository.ready(), self.repository.readiness()

    # --- inference -----------------------------------------------------------------------------------------------

    async def predict(
        self,
        ref: ModelRef,
        signature_name: str,
        decode: InputDecoder,
        request_id: str = "",
        output_filter: Sequence[str] = (),
    ) -> PredictResult:
        model = self.model(ref)
        sig = model.signature(signature_name)
        inputs = decode(sig)
        size, batched = self._validate(model, sig, inputs)
        if output_filter:
            unknown = [k for k in output_filter if k not in sig.outputs]
            if unknown:
                raise InvalidArgument(
                    f"output tensor alias not found in signature: {unknown[0]} Outputs expected to be in the set "
                    f"{{{','.join(sig.outputs)}}}."
                )
        runner = self._batcher if (batched and self._batcher is not None) else self._direct
        outputs = await runner.run(model, sig.name, inputs, size)
        if output_filter:
            outputs = {k: outputs[k] for k in dict.fromkeys(output_filter)}
        if self._request_log is not None and sig.name != EXPLAIN_SIGNATURE:  # its `words` are the raw text
            self._request_log.submit(request_id, model.name, model.version, sig, inputs, outputs)
        return PredictResult(model, sig, outputs, size)

    def explainable_model(self, ref: ModelRef) -> ServableModel:
        """The model `ref` names, if it has the `explain` signature REST `:explain` runs (else 404 saying so)."""
        model = self.model(ref)
        if EXPLAIN_SIGNATURE not in model.signatures:
            raise NotFound(
                f"Model `{model.name}` version {model.version} has no '{EXPLAIN_SIGNATURE}' signature, so it cannot "
                f"explain its scores (its signatures: {', '.join(sorted(model.signatures))})"
            )
        return model

    async def run_signature(
        self, model: ServableModel, sig: SignatureInfo, inputs: dict[str, np.ndarray], request_id: str = ""
    ) -> dict[str, np.ndarray]:
        """Validate, run (batched where the signature allows) and log one call; Classify / Regress use it."""
        size, batched = self._validate(model, sig, inputs)
        runner = self._batcher if (batched and self._batcher is not None) else self._direct
        outputs = await runner.run(model, sig.name, inputs, size)
        if self._request_log is not None:
            self._request_log.submit(request_id, model.name, model.version, sig, inputs, outputs)
        return outputs

    def _signature_runner(self, request_id: str) -> example_apis.SignatureRunner:
        async def run(m: ServableModel, sig: SignatureInfo, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return await self.run_signature(m, sig, inputs, request_id)

        return run

    async def classify_or_regress(
        self,
        ref: ModelRef,
        task: example_apis.InferenceTask,
        examples: example_apis.ExamplesDecoder,
        request_id: str = "",
    ) -> example_apis.ExamplesResult:
        """Classify / Regress on serialized tf.Examples, with TF Serving's checks (model_server.example_apis)."""
        model = self.model(ref)
        check = self._opt.signature_method_name_check
        return await example_apis.run_single(model, task, examples, self._signature_runner(request_id), check)

    async def multi_inference(
        self,
        ref: ModelRef,
        tasks: Sequence[tuple[str, example_apis.InferenceTask]],
        examples: example_apis.ExamplesDecoder,
        request_id: str = "",
    ) -> example_apis.ExamplesResult:
        """MultiInference: ``(model name, task)`` pairs on one input; ``ref`` is the first task's model."""
        model = self.model(ref)
        check = self._opt.signature_method_name_check
        return await example_apis.run_multi(model, tasks, examples, self._signature_runner(request_id), check)

    def _validate(self, model: ServableModel, sig: SignatureInfo, inputs: Mapping[str, np.ndarray]) -> tuple[int, bool]:
        """Names, batch size and (per the model's hints) text content; returns (size, batchable)."""
        expected = set(sig.inputs)
        got = set(inputs)
        if got != expected:
            extra = sorted(got - expected)
            missing = sorted(expected - got)
            raise InvalidArgument(
                f"Request inputs do not match required inputs for model `{model.name}`. "
                f"Send extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
            )
        size: int | None = None
        batched = True
        for name, info in sig.inputs.items():
            arr = inputs[name]
            if not info.batched:
                batched = False
                continue
            n = self._check_tensor(name, info, arr, batching=self._batcher is not None)
            if size is None:
                size = n
            elif n != size:
                if self._batcher is not None:
                    raise InvalidArgument("Batching session Run() input tensors must have equal 0th-dimension size")
                batched = False  # as TF Serving without batching: the graph decides
        if size is None:
            size = 1
        if size == 0:
            raise InvalidArgument("The request has an empty batch: send at least one instance")
        if size > self._opt.max_instances_per_request:
            raise InvalidArgument(
                f"The request has {size} instances, more than the limit of {self._opt.max_instances_per_request} "
                f"(--max_instances_per_request); split it into smaller requests"
            )
        for name in sig.hints.non_empty_text_inputs:  # string inputs: checked when the version loaded
            if inputs[name].dtype == object:  # another dtype: TensorFlow's dtype error comes back instead
                self._check_text(name, inputs[name])
        return size, batched

    @staticmethod
    def _check_tensor(name: str, info: TensorInfo, arr: np.ndarray, batching: bool) -> int:
        """The instance count of an input the signature batches. Dtypes and shapes are not checked here: as in TF
        Serving, the tensors reach the graph as sent and TensorFlow's own error comes back when it cannot take them
        (the model layer gives TF's dtype message). Batching needs a first dimension (TF Serving's words)."""
        del name, info
        if arr.ndim == 0:
            if batching:
                raise InvalidArgument("Batching session Run() input tensors must have at least one dimension")
            return 1
        return int(arr.shape[0])

    def _check_text(self, name: str, arr: np.ndarray) -> None:
        for i, value in enumerate(arr.flat):
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidArgument(f"Input '{name}' instance {i} is not valid UTF-8") from None
            if not self._opt.allow_empty_text and not text.strip():
                raise InvalidArgument(
                    f"Input '{name}' instance {i} is empty or whitespace-only: send the text to classify"
                )
