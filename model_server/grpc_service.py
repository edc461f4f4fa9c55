"""The gRPC transport: TF Serving's ``PredictionService`` and ``ModelService`` on ``grpc.aio``.

Servicers are generated-stub subclasses, so any stock ``prediction_service_pb2_grpc.PredictionServiceStub`` client
works unchanged. Each method only converts protos to data-plane calls and back; errors become a status code and
details (never a traceback) through :func:`model_server.errors.to_serving_error`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from model_server import example_codec, tensors
from model_server.calls import REQUEST_ID_HEADER, Call, CallRecorder
from model_server.dataplane import DataPlane, ModelRef
from model_server.errors import (
    Code,
    InvalidArgument,
    SignatureNotFound,
    Unavailable,
    to_serving_error,
)
from model_server.example_apis import CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME, InferenceTask
from model_server.logs import AccessLog
from model_server.metrics import Metrics
from model_server.model import DEFAULT_SIGNATURE, SignatureInfo
from model_server.model_config import ConfigError, ModelConfig, configs_from_proto
from model_server.v2_grpc import add_v2_service

log = logging.getLogger(__name__)

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


_METADATA_KEY = REQUEST_ID_HEADER.lower()  # gRPC metadata keys are lower-case
Handler = Callable[[Any, Call], Awaitable[Any]]


def _ref(spec: Any, call: Call) -> ModelRef:
    if not spec.name:
        raise InvalidArgument("Missing model name in request.")
    call.model = spec.name
    # version and version_label are a proto oneof: at most one is set.
    version = spec.version.value if spec.HasField("version") else None
    label = spec.version_label or None
    call.version = version
    return ModelRef(spec.name, version, label)


class GrpcTransport:
    """Shared plumbing of both services: request ids, error mapping, metrics, access log, draining."""

    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        access_log: AccessLog,
        reload_config: Callable[[Sequence[ModelConfig]], Awaitable[None]],
    ) -> None:
        self.plane = plane
        self._calls = CallRecorder("grpc", metrics, access_log, plane.metric_model_label)
        self.reload_config = reload_config
        self._inflight = metrics.inflight.labels("grpc")
        self.draining = False

    async def call(
        self,
        service: str,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        handler: Handler,
        empty: Callable[[], Any],
    ) -> Any:
        start = time.perf_counter()
        metadata = dict(context.invocation_metadata() or ())
        call = self._calls.new_call(metadata.get(_METADATA_KEY))
        call.method = method.lower()
        self._inflight.inc()
        try:
            if self.draining:
                raise Unavailable("The server is shutting down")
            response = await handler(request, call)
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never a traceback
            error, unexpected = to_serving_error(exc, call.request_id)
            if unexpected:
                log.error("request %s: unexpected error", call.request_id, exc_info=exc)
            call.error = error.for_grpc()
            context.set_code(call.error.grpc_code)
            context.set_details(call.error.message)
            response = empty()
        finally:
            self._inflight.dec()
        context.set_trailing_metadata(((_METADATA_KEY, call.request_id),))
        self._calls.record(
            call,
            time.perf_counter() - start,
            path=f"/{service}/{method}",
            status=(call.error.code if call.error is not None else Code.OK).value,
            request_bytes=request.ByteSize(),
            response_bytes=response.ByteSize(),
        )
        return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService``."""

    def __init__(self, transport: GrpcTransport) -> None:
        self._t = transport

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802 - gRPC names
        return await self._t.call(
            PREDICTION_SERVICE, "Predict", request, context, self._predict, predict_pb2.PredictResponse
        )

    async def _predict(self, request: Any, call: Call) -> Any:
        ref = _ref(request.model_spec, call)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        call.signature = signature_name
        if signature_name not in self._t.plane.model(ref).signatures:
            raise SignatureNotFound(signature_name)  # gRPC's code and words differ from REST's (errors.py)

        def decode(sig: SignatureInfo) -> dict[str, np.ndarray]:
            return {name: tensors.proto_to_ndarray(proto, name) for name, proto in request.inputs.items()}

        result = await self._t.plane.predict(
            ref, signature_name, decode, call.request_id, output_filter=list(request.output_filter)
        )
        call.version = result.model.version
        call.instances = result.batch_size
        response = predict_pb2.PredictResponse()
        spec = response.model_spec
        spec.name = result.model.name
        spec.version.value = result.model.version
        spec.signature_name = result.signature.name
        for name, arr in result.outputs.items():
            tensors.ndarray_to_proto(arr, result.signature.outputs[name].dtype, out=response.outputs[name])
        return response

    async def GetModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._t.call(
            PREDICTION_SERVICE,
            "GetModelMetadata",
            request,
            context,
            self._metadata,
            get_model_metadata_pb2.GetModelMetadataResponse,
        )

    async def _metadata(self, request: Any, call: Call) -> Any:
        ref = _ref(request.model_spec, call)
        fields = list(request.metadata_field)
        if not fields:
            raise InvalidArgument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in fields:
            if field != "signature_def":
                raise InvalidArgument(f"Metadata field {field} is not supported")
        model = self._t.plane.model_metadata(ref)
        call.version = model.version
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(model.signature_def_map)
        return response

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._t.call(
            PREDICTION_SERVICE,
            "Classify",
            request,
            context,
            self._classify_or_regress,
            classification_pb2.ClassificationResponse,
        )

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._t.call(
            PREDICTION_SERVICE,
            "Regress",
            request,
            context,
            self._classify_or_regress,
            regression_pb2.RegressionResponse,
        )

    async def _classify_or_regress(self, request: Any, call: Call) -> Any:
        if not request.HasField("model_spec"):
            raise InvalidArgument("Missing ModelSpec")
        ref = _ref(request.model_spec, call)
        signature_name = request.model_spec.signature_name
        call.signature = signature_name or DEFAULT_SIGNATURE
        classify = isinstance(request, classification_pb2.ClassificationRequest)
        task = InferenceTask(signature_name, CLASSIFY_METHOD_NAME if classify else REGRESS_METHOD_NAME)
        result = await self._t.plane.classify_or_regress(
            ref, task, lambda: example_codec.input_examples(request.input), call.request_id
        )
        call.version = result.model.version
        call.instances = result.num_examples
        response = classification_pb2.ClassificationResponse() if classify else regression_pb2.RegressionResponse()
        _result_spec(response.model_spec, result.model.name, signature_name, result.model.version)
        example_codec.fill_result(result.results[0].result, response.result)
        return response

    async def MultiInference(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._t.call(
            PREDICTION_SERVICE, "MultiInference", request, context, self._multi, inference_pb2.MultiInferenceResponse
        )

    async def _multi(self, request: Any, call: Call) -> Any:
        # TF Serving looks the servable up by the first task's ModelSpec (multi_inference_helper.cc)
        first = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        ref = _ref(first, call)
        tasks = [(t.model_spec.name, InferenceTask(t.model_spec.signature_name, t.method_name)) for t in request.tasks]
        call.signature = ",".join(task.signature_name or DEFAULT_SIGNATURE for _, task in tasks)
        result = await self._t.plane.multi_inference(
            ref, tasks, lambda: example_codec.input_examples(request.input), call.request_id
        )
        call.version = result.model.version
        call.instances = result.num_examples
        response = inference_pb2.MultiInferenceResponse()
        for task_result in result.results:
            out = response.results.add()
            _result_spec(out.model_spec, result.model.name, task_result.task.signature_name, result.model.version)
            example_codec.fill_inference_result(task_result.result, out)
        return response


def _result_spec(spec: Any, name: str, signature_name: str, version: int) -> None:
    """TF Serving's ``MakeModelSpec``: the model, the signature (serving_default when none was named), the version."""
    spec.name = name
    spec.signature_name = signature_name or DEFAULT_SIGNATURE
    spec.version.value = version


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService``."""

    def __init__(self, transport: GrpcTransport) -> None:
        self._t = transport

    async def GetModelStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._t.call(
            MODEL_SERVICE, "GetModelStatus", request, context, self._status, get_model_status_pb2.GetModelStatusResponse
        )

    async def _status(self, request: Any, call: Call) -> Any:
        ref = _ref(request.model_spec, call)
        response = get_model_status_pb2.GetModelStatusResponse()
        for s in self._t.plane.model_status(ref):
            entry = response.model_version_status.add()
            entry.version = s.version
            entry.state = int(s.state)
            entry.status.error_code = int(s.error_code)
            entry.status.error_message = s.error_message
        return response

    async def HandleReloadConfigRequest(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._t.call(
            MODEL_SERVICE,
            "HandleReloadConfigRequest",
            request,
            context,
            self._reload,
            model_management_pb2.ReloadConfigResponse,
        )

    async def _reload(self, request: Any, call: Call) -> Any:
        config: model_server_config_pb2.ModelServerConfig = request.config
        try:
            configs = configs_from_proto(config, "ReloadConfigRequest")
        except ConfigError as exc:
            raise InvalidArgument(str(exc)) from None
        await self._t.reload_config(configs)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = int(Code.OK)
        return response


def add_services(server: grpc.aio.Server, transport: GrpcTransport) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(transport), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(transport), server)
    add_v2_service(server, transport)  # inference.GRPCInferenceService: the Open Inference Protocol (KServe V2)
