"""TF Serving's warm-up file, ``assets.extra/tf_serving_warmup_requests``, read once per load: the warm-up replays its
records (a bad one fails the load, as in TF Serving) and the ONNX load check adds their texts to its probes."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from model_server.saved_model_loader import short_error

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
DEFAULT_SIGNATURE = "serving_default"  # tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY, TF Serving's default


class WarmupFileError(Exception):
    """The file cannot be read, or a record is not a PredictionLog (the message is fit for the status API)."""


@dataclasses.dataclass(frozen=True)
class WarmupRecord:
    """One PredictionLog of the file: ``kind`` is its ``log_type``; ``request`` the PredictRequest of a predict_log."""

    index: int
    kind: str | None
    request: Any = None

    @property
    def signature_name(self) -> str:
        return (self.request.model_spec.signature_name if self.request is not None else "") or DEFAULT_SIGNATURE


def read_warmup_file(version_path: str) -> list[WarmupRecord] | None:
    """The version's warm-up records (at most :data:`MAX_WARMUP_RECORDS`), or ``None`` when it has no such file."""
    path = os.path.join(version_path, WARMUP_FILE)
    if not os.path.exists(path):
        return None
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    try:
        raw = list(tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS).as_numpy_iterator())
    except Exception as exc:  # noqa: BLE001
        raise WarmupFileError(f"Cannot read warm-up file {path}: {short_error(exc)}") from exc
    records = []
    for i, record in enumerate(raw):
        entry = prediction_log_pb2.PredictionLog()
        try:
            entry.ParseFromString(record)
        except Exception as exc:  # noqa: BLE001
            raise WarmupFileError(f"Warm-up record {i} is not a PredictionLog: {short_error(exc)}") from exc
        kind = entry.WhichOneof("log_type")
        records.append(WarmupRecord(i, kind, entry.predict_log.request if kind == "predict_log" else None))
    return records
