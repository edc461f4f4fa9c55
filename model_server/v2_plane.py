"""The Open Inference Protocol (KServe V2) over the data plane: what REST ``/v2`` and ``inference.GRPCInferenceService``
share, so the two transports only translate wire formats.

Model lookup, versions, batching, the request log, metrics and errors are the data plane's, exactly as for TF
Serving's API. V2 adds three choices of ours:

* **Versions** are strings in V2: empty means the latest available version (TF Serving's default), digits name a
  version, anything else is a TF Serving version label (``--model_config_file``'s ``version_labels``).
* **Signatures**: a V2 model has one set of inputs and outputs, a SavedModel several signatures. ``serving_default``
  is used unless the request's ``parameters`` name another: ``{"signature_name": "from_examples"}`` (REST body or
  gRPC ``InferParameter.string_param``); model metadata describes the same signature (REST takes
  ``?signature_name=``).
* **Readiness**: a model that is configured but has no available version (loading, failed) is "not ready"; one the
  server does not serve is NOT_FOUND.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model_server import __version__, v2_codec
from model_server.dataplane import DataPlane, ModelRef
from model_server.errors import InvalidArgument, NotFound, ServingError, SignatureNotFound
from model_server.model import DEFAULT_SIGNATURE, ServableModel, SignatureInfo
from model_server.v2_codec import V2Input

SERVER_NAME = "model_server"
PLATFORM = "tensorflow_savedmodel"  # Triton's platform name for a TensorFlow SavedModel
SIGNATURE_PARAMETER = "signature_name"
EXTENSIONS = ("binary_tensor_data",)  # REST: Triton's binary tensor extension (tritonclient.http's default)
_MAX_VERSION = 2**63 - 1


@dataclasses.dataclass
class V2Request:
    """An inference request as both transports reduce it."""

    id: str
    parameters: Mapping[str, Any]
    inputs: Sequence[V2Input]
    outputs: Sequence[str] = ()  # requested output names; empty: all, in the signature's order


@dataclasses.dataclass
class V2Output:
    name: str
    datatype: v2_codec.V2Type
    array: np.ndarray


@dataclasses.dataclass
class V2Result:
    model: ServableModel
    signature: SignatureInfo
    outputs: list[V2Output]
    batch_size: int


def model_ref(name: str, version: str) -> ModelRef:
    """A V2 (name, version string) as the data plane's reference; see the module docstring for version strings."""
    if not name:
        raise InvalidArgument("Missing model name in request.")
    if not version:
        return ModelRef(name)
    if version.isascii() and version.isdigit():
        number = int(version)
        if number > _MAX_VERSION:
            raise InvalidArgument(f"Failed to convert version: {version[:30]} to numeric.")
        return ModelRef(name, number)
    return ModelRef(name, label=version)


class V2Plane:
    """The V2 operations on one data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def server_ready(self) -> bool:
        ready, _ = self.plane.ready()
        return ready

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def model_ready(self, ref: ModelRef) -> bool:
        """True when the version asked for is available; NOT_FOUND when the server does not know the model."""
        manager = self.plane.repository.manager(ref.name)
        if manager is None:
            raise NotFound(f"Model {ref.name} is not served by this server")
        try:
            self.plane.model(ref)
        except NotFound:
            return False
        return True

    def model_metadata(self, ref: ModelRef, signature_name: str = "") -> dict[str, Any]:
        model = self.plane.model_metadata(ref)
        sig = self._signature(model, signature_name or DEFAULT_SIGNATURE)
        manager = self.plane.repository.manager(model.name)
        versions = manager.available_versions() if manager is not None else [model.version]
        return {
            "name": model.name,
            "versions": [str(v) for v in versions],
            "platform": PLATFORM,
            "inputs": [_tensor_metadata(info) for info in sig.inputs.values()],
            "outputs": [_tensor_metadata(info) for info in sig.outputs.values()],
        }

    async def infer(self, ref: ModelRef, request: V2Request, request_id: str) -> V2Result:
        signature_name = v2_codec.string_parameter(request.parameters, SIGNATURE_PARAMETER, DEFAULT_SIGNATURE)
        self._signature(self.plane.model(ref), signature_name)
        seen: set[str] = set()
        for tensor in request.inputs:
            if tensor.name in seen:
                raise InvalidArgument(f"Input '{tensor.name}' is given more than once")
            seen.add(tensor.name)
        if len(set(request.outputs)) != len(request.outputs):
            raise InvalidArgument("An output is requested more than once")

        def decode(sig: SignatureInfo) -> dict[str, np.ndarray]:
            return {tensor.name: v2_codec.to_array(tensor, sig) for tensor in request.inputs}

        result = await self.plane.predict(ref, signature_name, decode, request_id, output_filter=request.outputs)
        sig = result.signature
        names = list(request.outputs) or list(sig.outputs)
        outputs = [V2Output(n, v2_codec.v2_type(sig.outputs[n].dtype), result.outputs[n]) for n in names]
        return V2Result(result.model, sig, outputs, result.batch_size)

    @staticmethod
    def _signature(model: ServableModel, name: str) -> SignatureInfo:
        try:
            return model.signature(name)
        except ServingError:
            raise SignatureNotFound(name) from None


def _tensor_metadata(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "datatype": v2_codec.v2_type(info.dtype).name,
        "shape": v2_codec.metadata_shape(info),
    }
