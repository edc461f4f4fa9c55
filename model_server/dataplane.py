"""The protocol-agnostic data plane: every REST and gRPC call becomes one of these methods.

Transports only translate wire formats; model lookup, input validation against the signature, batching, output
filtering and the request log live here once, so both protocols accept and refuse exactly the same requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from model_server.batching import BatchScheduler, DirectRunner
from model_server.errors import InvalidArgument, Unimplemented
from model_server.logs import RequestLog
from model_server.metrics import OTHER_MODEL
from model_server.model import ServableModel, SignatureInfo
from model_server.repository import ModelRepository, VersionStatus
from model_server.tensors import TensorInfo, numpy_display

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


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ",".join("-1" if d is None else str(d) for d in shape) + "]"


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
        if self._request_log is not None:
            self._request_log.submit(request_id, model.name, model.version, sig, inputs, outputs)
        return PredictResult(model, sig, outputs, size)

    def unsupported(self, ref: ModelRef, method: str) -> None:
        """Classify / Regress / MultiInference: the model must exist (404 first), then a clean UNIMPLEMENTED."""
        self.model(ref)
        raise Unimplemented(
            f"{method} is not supported by this model server: the served signatures are predict signatures; "
            f"use Predict (REST :predict) instead"
        )

    def _validate(self, model: ServableModel, sig: SignatureInfo, inputs: Mapping[str, np.ndarray]) -> tuple[int, bool]:
        """Names, dtypes, shapes, batch size and (per the model's hints) text content; returns (size, batchable)."""
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
            self._check_tensor(name, info, arr)
            if not info.batched:
                batched = False
                continue
            n = int(arr.shape[0])
            if size is None:
                size = n
            elif n != size:
                raise InvalidArgument(
                    f"Input '{name}' has batch size {n} but other inputs have {size}; all inputs must have the same "
                    f"first dimension"
                )
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
            self._check_text(name, inputs[name])
        return size, batched

    @staticmethod
    def _check_tensor(name: str, info: TensorInfo, arr: np.ndarray) -> None:
        want = info.dtype
        if want.is_string:
            ok = arr.dtype == object and all(isinstance(v, bytes) for v in arr.flat)
        else:
            ok = arr.dtype == want.numpy
        if not ok:
            got = "string" if arr.dtype == object else numpy_display(arr.dtype)
            raise InvalidArgument(f"Input '{name}' expects dtype {want.display} but {got} was provided")
        if info.shape is None:
            return
        if arr.ndim != len(info.shape) or any(
            d is not None and d != s for d, s in zip(info.shape, arr.shape, strict=True)
        ):
            raise InvalidArgument(
                f"Input '{name}' has shape {_shape_text(arr.shape)} but the signature expects "
                f"{_shape_text(info.shape)} (-1: any size)"
            )

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
