#!/bin/sh
# Container entrypoint of the model server, with TF Serving's image conventions so its docs apply unchanged:
#   MODEL_NAME (default bert_imdb) and MODEL_BASE_PATH (default /models) select the model, served from
#   $MODEL_BASE_PATH/$MODEL_NAME; arguments (`docker run IMAGE <args>`, a Pod's `args:`) are appended after them,
#   and since the last occurrence of a flag wins, `--model_name=…`, `--model_base_path=…` or `--model_config_file=…`
#   given as arguments override the environment.
# `exec` makes the server PID 1, so SIGTERM (docker stop, Kubernetes) reaches it directly and it drains in-flight
# requests (--shutdown_grace_seconds) before exiting 0. It installs its own SIGTERM handler, which is what PID 1
# needs (the kernel ignores signals PID 1 does not handle).
set -eu
exec python -m model_server --host=0.0.0.0 --port=8500 --rest_api_port=8501 \
    --model_name="${MODEL_NAME}" --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@"
