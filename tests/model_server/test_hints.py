"""Serving hints: the file format, its writer, what a model load does with them, and the generic checks and request-log
masking they switch on (in process: no server needed)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_server.batching import DirectRunner
from model_server.dataplane import DataPlane, ModelRef, PlaneOptions
from model_server.errors import InvalidArgument
from model_server.hints import (
    HINTS_FILE,
    HintsError,
    SignatureHints,
    parse_serving_hints,
    read_serving_hints,
    serving_hints_json,
)
from model_server.logs import RequestLog, masked_columns
from model_server.metrics import Metrics
from model_server.model import ModelLoadError, ServableModel, import_op_libraries
from model_server.privacy import EMAIL_MASK
from tests.doubles.toy_model import SERVING_HINTS
from tests.model_server.ms_helpers import serialized_example


def _strings(*values: str | bytes) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    return arr


# --- the file format ---------------------------------------------------------------------------------------------


def test_the_documented_example_round_trips() -> None:
    text = serving_hints_json(SERVING_HINTS)
    assert json.loads(text) == {
        "format": 1,
        "signatures": {
            "serving_default": {"non_empty_text_inputs": ["text"], "input_features": {"text": "review"}},
            "from_examples": {"example_inputs": {"examples": ["review"]}},
        },
    }
    assert parse_serving_hints(text) == SERVING_HINTS


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ({"signatures": {}}, "format None is not supported"),
        ({"format": 2, "signatures": {}}, "format 2 is not supported"),
        ({"format": 1, "signatures": []}, "'signatures' must be an object"),
        ({"format": 1, "signatures": {"s": []}}, "signatures.s must be an object"),
        ({"format": 1, "signatures": {"s": {"non_empty_text_inputs": "text"}}}, "must be a list of non-empty"),
        ({"format": 1, "signatures": {"s": {"input_features": {"text": 3}}}}, "must map input names to feature"),
        ({"format": 1, "signatures": {"s": {"example_inputs": {"examples": [""]}}}}, "list of non-empty strings"),
    ],
)
def test_malformed_hints_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(HintsError, match=message):
        parse_serving_hints(doc if isinstance(doc, str) else json.dumps(doc), "hints.json")


def test_unknown_keys_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    doc = {"format": 1, "signatures": {"s": {"non_empty_text_inputs": ["t"], "from_the_future": True}}}
    assert parse_serving_hints(json.dumps(doc)) == {"s": SignatureHints(non_empty_text_inputs=("t",))}
    assert "from_the_future" in caplog.text


def test_a_version_without_hints_has_none(tmp_path: Path) -> None:
    assert read_serving_hints(str(tmp_path)) == {}


# --- loading a version -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_v1(toy_models: dict[str, str]) -> Iterator[ServableModel]:
    model = ServableModel("toy", 1, toy_models["v1"])
    model.load(warmup=False)
    yield model
    model.unload()


def _copy_with_hints(source: str, target: Path, hints: Mapping[str, Any] | None) -> str:
    shutil.copytree(source, target)
    path = target / HINTS_FILE
    if hints is None:
        path.unlink()
    else:
        path.write_text(json.dumps(hints), encoding="utf-8")
    return str(target)


def test_hints_reach_the_signatures(toy_v1: ServableModel) -> None:
    assert toy_v1.signatures["serving_default"].hints == SERVING_HINTS["serving_default"]
    assert toy_v1.signatures["from_examples"].hints == SERVING_HINTS["from_examples"]


@pytest.mark.parametrize(
    ("signatures", "message"),
    [
        ({"nope": {"non_empty_text_inputs": ["text"]}}, "names signature 'nope', which the SavedModel lacks"),
        ({"serving_default": {"non_empty_text_inputs": ["txt"]}}, "has no string input 'txt'"),
        ({"from_examples": {"example_inputs": {"text": ["review"]}}}, "has no string input 'text'"),
    ],
)
def test_hints_that_do_not_fit_the_model_fail_the_load(
    toy_models: dict[str, str], tmp_path: Path, signatures: dict, message: str
) -> None:
    path = _copy_with_hints(toy_models["v1"], tmp_path / "1", {"format": 1, "signatures": signatures})
    with pytest.raises(ModelLoadError, match=message):
        ServableModel("toy", 1, path).load(warmup=False)


def test_synthetic_warm_up_builds_examples_from_the_hints(toy_models: dict[str, str], tmp_path: Path) -> None:
    """Without a warm-up file every signature is warmed up; from_examples needs an Example with its feature."""
    import_op_libraries()  # version 2 lower-cases with a TF Text op
    model = ServableModel("toy", 2, toy_models["v2"])
    model.load(warmup=True, warmup_batch_sizes=(1, 4))
    assert model.warmup_requests == 4  # 2 signatures x 2 batch sizes, none failed
    model.unload()


# --- what the hints switch on ------------------------------------------------------------------------------------


class _OneModel:
    def __init__(self, model: ServableModel) -> None:
        self.model = model

    def get_model(self, name: str, version: int | None, label: str | None) -> ServableModel:
        return self.model


def _predict(model: ServableModel, inputs: dict[str, np.ndarray], **options: Any) -> dict[str, np.ndarray]:
    direct = DirectRunner(1, Metrics())
    plane = DataPlane(_OneModel(model), direct, None, PlaneOptions(**options))  # type: ignore[arg-type]
    try:
        result = asyncio.run(plane.predict(ModelRef("toy"), "serving_default", lambda sig: inputs))
    finally:
        direct.stop()
    return result.outputs


def test_non_empty_text_inputs_are_checked_by_name(toy_v1: ServableModel) -> None:
    with pytest.raises(InvalidArgument) as info:
        _predict(toy_v1, {"text": _strings("fine", " ")})
    assert info.value.message == "Input 'text' instance 1 is empty or whitespace-only: send the text to classify"
    with pytest.raises(InvalidArgument, match="Input 'text' instance 0 is not valid UTF-8"):
        _predict(toy_v1, {"text": _strings(b"\xff", "x")}, allow_empty_text=True)
    assert _predict(toy_v1, {"text": _strings("")}, allow_empty_text=True)["label"].tolist() == [b"positive"]


def test_a_model_without_hints_accepts_any_string(toy_models: dict[str, str], tmp_path: Path) -> None:
    model = ServableModel("toy", 1, _copy_with_hints(toy_models["v1"], tmp_path / "1", None))
    model.load(warmup=False)
    assert model.signatures["serving_default"].hints == SignatureHints()
    assert _predict(model, {"text": _strings("", " ")})["label"].tolist() == [b"positive", b"positive"]
    model.unload()


def test_request_log_masks_every_string_input_and_every_bytes_feature(toy_v1: ServableModel, tmp_path: Path) -> None:
    mail = "me@example.com"
    example = serialized_example(f"great, write {mail}")
    from tensorflow.core.example import example_pb2

    extra = example_pb2.Example.FromString(example)
    extra.features.feature["title"].bytes_list.value.extend([f"{mail} 1".encode(), b"2"])
    extra.features.feature["rating"].int64_list.value.append(9)
    columns = masked_columns(
        {"examples": _strings(example, extra.SerializeToString())},
        SignatureHints(example_inputs={"examples": ("review",)}),
    )
    assert columns == {
        "review": [f"great, write {EMAIL_MASK}", f"great, write {EMAIL_MASK}"],
        "title": [None, [f"{EMAIL_MASK} 1", "2"]],
    }
    # No hints: a string input is logged (masked) under its own name; numeric inputs are not logged.
    plain = masked_columns({"q": _strings(f"ask {mail}"), "n": np.array([1.0])}, SignatureHints())
    assert plain == {"q": [f"ask {EMAIL_MASK}"]}

    path = tmp_path / "requests.jsonl"
    request_log = RequestLog(str(path), 1.0, Metrics())
    outputs = {"label": np.array([b"positive"], dtype=object), "probability": np.array([0.75], dtype=np.float32)}
    request_log.submit("r1", "toy", 1, toy_v1.signatures["serving_default"], {"text": _strings(mail)}, outputs)
    request_log.close()
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["review"] == EMAIL_MASK and "text" not in record
    assert (record["label"], record["probability"], record["signature"]) == ("positive", 0.75, "serving_default")
