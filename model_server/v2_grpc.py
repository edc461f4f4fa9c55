"""The Open Inference Protocol's gRPC service, ``inference.GRPCInferenceService``, on the gRPC port.

Registered as a generic handler (the message classes come from ``v2_proto``, not generated stubs) that receives the
request's bytes, so an unparsable message is the client's INVALID_ARGUMENT rather than gRPC's own INTERNAL. Every
method goes through :meth:`GrpcTransport.call`: request ids, draining, metrics, the access log and error codes are
those of TF Serving's services. Responses carry ``raw_output_contents`` when the request used
``raw_input_contents`` (as Triton clients do, and as Triton answers) and typed ``contents`` otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from model_server import v2_codec, v2_proto
from model_server.calls import Call
from model_server.errors import InvalidArgument
from model_server.v2_codec import V2Input
from model_server.v2_plane import SIGNATURE_PARAMETER, V2Plane, V2Request, model_ref

if TYPE_CHECKING:  # grpc_service imports this module to register the service
    from model_server.grpc_service import GrpcTransport

SERVICE = v2_proto.SERVICE
Msg = v2_proto.message_class


def _ref(name: str, version: str, call: Call) -> Any:
    call.model = name or None
    ref = model_ref(name, version)
    call.version = ref.version
    return ref


class V2Servicer:
    """One coroutine per RPC, each taking the serialized request."""

    def __init__(self, transport: GrpcTransport) -> None:
        self._t = transport
        self._v2 = V2Plane(transport.plane)

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        handlers = {}
        for rpc in v2_proto.RPCS:
            work = getattr(self, "_" + rpc.name)
            handlers[rpc.name] = grpc.unary_unary_rpc_method_handler(
                self._method(rpc.name, v2_proto.MESSAGES[rpc.request], v2_proto.MESSAGES[rpc.response], work),
                response_serializer=lambda message: message.SerializeToString(),
            )
        return handlers

    def _method(
        self, name: str, request_cls: Any, response_cls: Any, work: Callable[[Any, Call], Awaitable[Any]]
    ) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def method(data: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                request = request_cls.FromString(data)
            except (DecodeError, RuntimeError, ValueError):
                request, handler = request_cls(), _refuse(f"The {request_cls.DESCRIPTOR.name} message cannot be parsed")
            else:
                handler = work
            return await self._t.call(SERVICE, name, request, context, handler, response_cls)

        return method

    async def _ServerLive(self, request: Any, call: Call) -> Any:  # noqa: N802 - gRPC names
        return Msg("ServerLiveResponse")(live=True)

    async def _ServerReady(self, request: Any, call: Call) -> Any:  # noqa: N802
        return Msg("ServerReadyResponse")(ready=self._v2.server_ready())

    async def _ServerMetadata(self, request: Any, call: Call) -> Any:  # noqa: N802
        return Msg("ServerMetadataResponse")(**self._v2.server_metadata())

    async def _ModelReady(self, request: Any, call: Call) -> Any:  # noqa: N802
        ref = _ref(request.name, request.version, call)
        return Msg("ModelReadyResponse")(ready=self._v2.model_ready(ref))

    async def _ModelMetadata(self, request: Any, call: Call) -> Any:  # noqa: N802
        ref = _ref(request.name, request.version, call)
        doc = self._v2.model_metadata(ref)
        response = Msg("ModelMetadataResponse")(name=doc["name"], versions=doc["versions"], platform=doc["platform"])
        for key in ("inputs", "outputs"):
            for tensor in doc[key]:
                getattr(response, key).add(**tensor)
        return response

    async def _ModelInfer(self, request: Any, call: Call) -> Any:  # noqa: N802
        ref = _ref(request.model_name, request.model_version, call)
        parameters = {k: v2_codec.parameter_value(v) for k, v in request.parameters.items()}
        signature = v2_codec.string_parameter(parameters, SIGNATURE_PARAMETER, "serving_default")
        call.signature = signature
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidArgument(
                f"raw_input_contents has {len(raw)} entries but the request has {len(request.inputs)} inputs"
            )
        inputs = []
        for i, tensor in enumerate(request.inputs):
            v2_input = V2Input(tensor.name, tensor.datatype, list(tensor.shape))
            if raw:
                if tensor.HasField("contents"):
                    raise InvalidArgument(f"Input '{tensor.name}' has contents and raw_input_contents: send one")
                v2_input.raw = raw[i]
            else:
                field = v2_codec.datatype(tensor.datatype, tensor.name).contents_field
                if field is None:
                    raise InvalidArgument(f"Input '{tensor.name}': {tensor.datatype} travels in raw_input_contents")
                v2_input.values = list(getattr(tensor.contents, field))
            inputs.append(v2_input)
        outputs = [out.name for out in request.outputs]
        result = await self._v2.infer(ref, V2Request(request.id, parameters, inputs, outputs), call.request_id)
        call.version = result.model.version
        call.instances = result.batch_size
        response = Msg("ModelInferResponse")(
            model_name=result.model.name, model_version=str(result.model.version), id=request.id
        )
        use_raw = bool(raw) or not inputs or any(o.datatype.contents_field is None for o in result.outputs)
        for out in result.outputs:
            tensor = response.outputs.add(name=out.name, datatype=out.datatype.name, shape=list(out.array.shape))
            if use_raw:
                response.raw_output_contents.append(v2_codec.to_raw(out.array, out.datatype))
            else:
                values = out.array.ravel().tolist()
                getattr(tensor.contents, str(out.datatype.contents_field)).extend(values)
        return response


def _refuse(message: str) -> Callable[[Any, Call], Awaitable[Any]]:
    async def handler(request: Any, call: Call) -> Any:
        raise InvalidArgument(message)

    return handler


def add_v2_service(server: grpc.aio.Server, transport: GrpcTransport) -> None:
    """Register ``inference.GRPCInferenceService`` beside TF Serving's services."""
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, V2Servicer(transport).handlers()),))
