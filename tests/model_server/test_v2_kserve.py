"""KServe's own V2 clients against the server, opt-in: the ``kserve`` package does not co-install with the locks
(kserve 0.21 pins psutil<6 and, through its server half, pulls fastapi, uvicorn, ray ...), so it is not a
dependency. To run this test, install its client's import chain without dependencies into a directory of its own,
never into the venv::

    .venv/bin/python -m pip install --no-deps --target .stacks/kserve-client kserve==0.21.0 fastapi starlette \
        "cloudevents<2" deprecation annotated-doc "uvicorn<1" timing-asgi grpc-interceptor tabulate \
        python-multipart watchfiles
    KSERVE_CLIENT_PATH=.stacks/kserve-client .venv/bin/python -m pytest tests/model_server/test_v2_kserve.py

Without ``KSERVE_CLIENT_PATH`` the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_server.process import ServerProcess
from tests.model_server.ms_helpers import MODEL

PROBE = Path(__file__).with_name("kserve_client_probe.py")
TEXTS = ["A great film, I loved it.", "Dull and boring.", "It was fine."]


def test_kserve_clients_score_like_tf_servings_api(shared_server: ServerProcess) -> None:
    path = os.environ.get("KSERVE_CLIENT_PATH")
    if not path:
        pytest.skip("set KSERVE_CLIENT_PATH to a --no-deps install of kserve (see this module's docstring)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(path).resolve()), os.getcwd()])}
    done = subprocess.run(
        [sys.executable, str(PROBE), shared_server.rest_url, shared_server.grpc_target, MODEL, *TEXTS],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rest_ready"] == [True, True, True] and result["grpc_ready"] == [True, True, True]
    with shared_server.rest_client() as rest:
        v1 = [row["probability"] for row in rest.predict_texts(MODEL, TEXTS, input_name="text")]
    for key in ("rest_binary_false", "rest_binary_true", "grpc"):
        np.testing.assert_allclose(result[key], v1, atol=1e-6, rtol=0, err_msg=key)
        assert result[f"{key}_id"] == "kserve-1"
