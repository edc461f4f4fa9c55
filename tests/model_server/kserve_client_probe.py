"""Scores texts with KServe's own V2 clients (``kserve.InferenceRESTClient`` / ``InferenceGRPCClient``) and prints
JSON; run in its own process by ``test_v2_kserve.py`` (kserve's generated ``inference.*`` protos clash with
tritonclient's in one process, and kserve is not in the locks: it comes from a ``--no-deps`` target directory).

    python tests/model_server/kserve_client_probe.py REST_URL GRPC_TARGET MODEL TEXT...
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np


def _request(model: str, texts: list[str], binary: bool) -> Any:
    from kserve import InferInput, InferRequest

    text = InferInput("text", [len(texts)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=binary)
    return InferRequest(model_name=model, infer_inputs=[text], request_id="kserve-1")


def _probabilities(response: Any) -> list[float]:
    (output,) = [o for o in response.outputs if o.name == "probability"]
    return [float(x) for x in output.as_numpy()]


async def main(rest_url: str, grpc_target: str, model: str, texts: list[str]) -> dict[str, Any]:
    from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig

    out: dict[str, Any] = {}
    rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    out["rest_ready"] = [
        await rest.is_server_live(rest_url),
        await rest.is_server_ready(rest_url),
        await rest.is_model_ready(rest_url, model),
    ]
    for binary in (False, True):
        response = await rest.infer(rest_url, _request(model, texts, binary), model_name=model)
        out[f"rest_binary_{str(binary).lower()}"] = _probabilities(response)
        out[f"rest_binary_{str(binary).lower()}_id"] = response.id
    await rest.close()
    grpc = InferenceGRPCClient(grpc_target)
    out["grpc_ready"] = [await grpc.is_server_live(), await grpc.is_server_ready(), await grpc.is_model_ready(model)]
    response = await grpc.infer(_request(model, texts, False))
    out["grpc"], out["grpc_id"] = _probabilities(response), response.id
    await grpc.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))))
