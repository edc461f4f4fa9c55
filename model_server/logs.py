"""Structured logs: the access log (always text-free) and the opt-in request log (masked text, for drift monitoring).

The access log records who-did-what-how-fast — sizes, timings, outcome codes, instance counts — and never a request
or response body or an error message (messages can echo input values). The request log is the only place request
text is written, only when ``--request_log_path`` is set, always after :func:`model_server.privacy.mask_pii`, from a
background thread so masking and disk I/O never slow a request; when that thread falls behind, records are dropped
and counted rather than queued without bound.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import queue
import random
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model_server.hints import SignatureHints
from model_server.metrics import Metrics
from model_server.model import SignatureInfo
from model_server.privacy import mask_pii

log = logging.getLogger(__name__)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AccessLog:
    """One JSON object per line, to stderr (``-``) or a file opened in append mode."""

    def __init__(self, path: str):
        self._lock = threading.Lock()
        self._owned = False
        if not path:
            self._stream = None
        elif path == "-":
            self._stream = sys.stderr
        else:
            self._stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as us
            self._owned = True

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(self, record: Mapping[str, Any]) -> None:
        if self._stream is None:
            return
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):  # a closed stream or a full disk must not fail the request
                pass

    def close(self) -> None:
        if self._owned and self._stream is not None:
            self._stream.close()
        self._stream = None


def _masked(value: Any) -> Any:
    """One string value, or a row of them, decoded leniently and with PII masked."""
    if isinstance(value, np.ndarray):
        return [_masked(v) for v in value.ravel()]
    return mask_pii(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))


def _feature_value(values: Sequence[bytes]) -> Any:
    """A tf.Example bytes feature as one masked string (or a list when it holds several values; "" when none)."""
    if len(values) == 1:
        return _masked(values[0])
    return [_masked(v) for v in values] if values else ""


def _example_columns(arr: np.ndarray, declared: Sequence[str]) -> dict[str, list[Any]]:
    """Every bytes feature of serialized tf.Examples, masked, one entry per instance ("" for a declared feature that
    an instance lacks, None for another one)."""
    from tensorflow.core.example import example_pb2

    rows: list[dict[str, Any]] = []
    for serialized in arr:
        ex = example_pb2.Example()
        try:
            ex.ParseFromString(serialized)
        except Exception:  # noqa: BLE001 - an unparsable example was already answered with an error
            rows.append({})
            continue
        rows.append(
            {
                name: _feature_value(feature.bytes_list.value)
                for name, feature in ex.features.feature.items()
                if feature.WhichOneof("kind") == "bytes_list"
            }
        )
    names = list(dict.fromkeys([*declared, *(name for row in rows for name in row)]))
    return {name: [row.get(name, "" if name in declared else None) for row in rows] for name in names}


def masked_columns(inputs: Mapping[str, np.ndarray], hints: SignatureHints) -> dict[str, list[Any]]:
    """The request's text, masked, per instance: every string input (under the training feature the hints say it
    carries, else its own name) and every bytes feature of the tf.Example inputs the hints name. Numeric inputs are
    left out; so is a string input whose batch size differs from the first one's."""
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for name, arr in inputs.items():
        if arr.dtype != object or arr.ndim == 0 or (rows is not None and arr.shape[0] != rows):
            continue
        rows = int(arr.shape[0])
        if name in hints.example_inputs:
            columns.update(_example_columns(arr, hints.example_inputs[name]))
        else:
            columns[hints.input_features.get(name, name)] = [_masked(v) for v in arr]
    return columns


def _json_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.generic):
        return v.item()
    return v


class RequestLog:
    """Masked text plus predictions, one line per instance; text is keyed by the training feature's name when the
    model's serving hints give it, so TFDV statistics of this log compare directly with the training data's."""

    def __init__(self, path: str, sample_rate: float, metrics: Metrics, max_pending: int = 10_000) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # text is personal data: owner only
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._sample_rate = sample_rate
        self._metrics = metrics
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def submit(
        self,
        request_id: str,
        model: str,
        version: int,
        signature: SignatureInfo,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
    ) -> None:
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:
            return
        try:
            self._queue.put_nowait((utc_now(), request_id, model, version, signature, inputs, outputs))
        except queue.Full:
            self._metrics.request_log_dropped.inc()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            try:
                self._write(*item)
            except Exception:  # noqa: BLE001 - never let a logging bug stop the writer
                log.exception("request log: cannot write a record")
            if self._queue.empty():
                self._file.flush()
        self._file.flush()

    def _write(
        self,
        ts: str,
        request_id: str,
        model: str,
        version: int,
        signature: SignatureInfo,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
    ) -> None:
        columns = masked_columns(inputs, signature.hints)
        if not columns:
            return  # nothing textual to monitor
        rows = len(next(iter(columns.values())))
        per_row = {k: v for k, v in outputs.items() if v.ndim >= 1 and v.shape[0] == rows}
        for i in range(rows):
            record: dict[str, Any] = {
                "ts": ts,
                "request_id": request_id,
                "model": model,
                "version": version,
                "signature": signature.name,
            }
            record.update((name, values[i]) for name, values in columns.items())
            for k, v in per_row.items():
                value = v[i]
                record[k] = _json_value(value) if np.ndim(value) == 0 else [_json_value(x) for x in value.ravel()]
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._file.close()
