"""How the model layer loads and runs SavedModels, as TF Serving does, without a server: TF1 graphs in a session
(init ops, assets), the MetaGraphDef chosen by tags, tensors fed as sent (the graph decides), TensorFlow's errors,
and warm-up records replayed ``--num_request_iterations_for_warmup`` times."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_server.errors import Code, to_serving_error
from model_server.model import ModelLoadError, ServableModel
from tests.doubles import tf_serving_models as tfs

QUICK_START = np.array([1.0, 2.0, 5.0], np.float32)  # TF Serving's docker.md request, for an x declared [-1, 1]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tfs_models")
    built = {
        "half_plus_two": tfs.build_half_plus_two(str(root / "half_plus_two")),
        "half_plus_three": tfs.build_half_plus_three(str(root / "half_plus_three")),
        "tf2": tfs.build_tf2_half_plus_two(str(root / "tf2")),
        "tagged": tfs.build_half_plus_two(str(root / "tagged"), tags=("serve", "gpu")),
        "legacy_text": tfs.build_half_plus_two(str(root / "legacy_text"), as_text=True, use_main_op=False),
    }
    tfs.write_x_warmup_requests(built["half_plus_two"], [1.0, 2.0])
    return built


def loaded(path: str, **load_args: Any) -> ServableModel:
    model = ServableModel("m", 1, path)
    model.load(**load_args)
    return model


def error_of(model: ServableModel, signature: str, inputs: dict[str, np.ndarray]) -> tuple[Code, str]:
    with pytest.raises(Exception) as info:
        model.predict(signature, inputs)
    error, unexpected = to_serving_error(info.value, "req-1")
    assert not unexpected, info.value
    return error.code, str(error)


def test_half_plus_two_has_tf_servings_signatures_and_answers_the_quick_start(models: dict[str, str]) -> None:
    model = loaded(models["half_plus_two"])
    assert sorted(model.signatures) == sorted(
        [
            tfs.PREDICT_SIGNATURE,
            tfs.CLASSIFY_X_TO_Y,
            tfs.CLASSIFY_X2_TO_Y3,
            tfs.REGRESS_X_TO_Y,
            tfs.REGRESS_X_TO_Y2,
            tfs.REGRESS_X2_TO_Y3,
        ]
    )
    assert model.signatures[tfs.CLASSIFY_X_TO_Y].method_name == tfs.CLASSIFY_METHOD
    assert model.signatures[tfs.REGRESS_X_TO_Y].method_name == tfs.REGRESS_METHOD
    x = model.signatures[tfs.PREDICT_SIGNATURE].inputs["x"]
    assert (x.dtype.name, x.shape) == ("float32", (None, 1))
    # the graph, not the server, decides: a [3] tensor for the [-1, 1] input runs, as in TF Serving
    np.testing.assert_allclose(model.predict(tfs.PREDICT_SIGNATURE, {"x": QUICK_START})["y"], [2.5, 3.0, 4.5])
    np.testing.assert_allclose(
        model.predict(tfs.PREDICT_SIGNATURE, {"x": QUICK_START[:, None]})["y"], [[2.5], [3.0], [4.5]]
    )
    examples = np.array([tfs.example(x=1.0), tfs.example(x=3.0, x2=4.0)], dtype=object)
    out = model.predict(tfs.REGRESS_X_TO_Y2, {tfs.EXAMPLES_INPUT: examples})
    np.testing.assert_allclose(out[tfs.REGRESS_OUTPUT], [[3.5], [4.5]])
    out = model.predict(tfs.REGRESS_X2_TO_Y3, {tfs.EXAMPLES_INPUT: np.array([[4.0]], np.float32)})
    np.testing.assert_allclose(out[tfs.REGRESS_OUTPUT], [[5.0]])


def test_a_tf2_module_takes_the_quick_start_too(models: dict[str, str]) -> None:
    model = loaded(models["tf2"])
    assert model.signatures[tfs.PREDICT_SIGNATURE].inputs["x"].shape == (None, 1)
    np.testing.assert_allclose(model.predict(tfs.PREDICT_SIGNATURE, {"x": QUICK_START})["y"], [2.5, 3.0, 4.5])


def test_half_plus_three_fails_tf2s_loader_and_serves_through_the_tf1_loader(models: dict[str, str]) -> None:
    import tensorflow as tf

    with pytest.raises(Exception, match="Shape must be rank 1 but is rank 0") as info:
        tf.saved_model.load(models["half_plus_three"])
    assert "ParseExample" in str(info.value)
    model = loaded(models["half_plus_three"])
    examples = np.array([tfs.example(x=1.0), tfs.example(x=4.0)], dtype=object)
    out = model.predict(tfs.REGRESS_X_TO_Y, {tfs.EXAMPLES_INPUT: examples})
    np.testing.assert_allclose(out[tfs.REGRESS_OUTPUT], [[3.5], [5.0]])


def test_dtype_and_shape_errors_are_tensorflows_as_invalid_argument(models: dict[str, str]) -> None:
    model = loaded(models["half_plus_two"])
    code, message = error_of(model, tfs.PREDICT_SIGNATURE, {"x": QUICK_START.astype(np.float64)})
    assert (code, message) == (Code.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided")
    code, message = error_of(model, tfs.PREDICT_SIGNATURE, {"x": np.array([b"1"], dtype=object)})
    assert (code, message) == (Code.INVALID_ARGUMENT, "Expects arg[0] to be float but string is provided")
    # serialized examples in a [1, 1] tensor: ParseExample's own shape error
    nested = np.array([[tfs.example(x=1.0)]], dtype=object)
    code, message = error_of(model, tfs.REGRESS_X_TO_Y, {tfs.EXAMPLES_INPUT: nested})
    assert (code, message) == (Code.INVALID_ARGUMENT, "Expected serialized to be a scalar or vector, got shape: [1,1]")
    code, message = error_of(model, tfs.REGRESS_X_TO_Y, {tfs.EXAMPLES_INPUT: np.array([b""], dtype=object)})
    assert (code, message) == (
        Code.INVALID_ARGUMENT,
        "Name: <unknown>, Feature: x (data type: float) is required but could not be found.",
    )
    garbled = np.array([b"\x0a\x05junk"], dtype=object)
    code, message = error_of(model, tfs.REGRESS_X_TO_Y, {tfs.EXAMPLES_INPUT: garbled})
    assert code == Code.INVALID_ARGUMENT and "Could not parse example input" in message, message


def test_saved_model_tags_choose_the_meta_graph(models: dict[str, str]) -> None:
    with pytest.raises(ModelLoadError) as info:
        loaded(models["tagged"])
    assert str(info.value).startswith(
        "Could not find meta graph def matching supplied tags: { serve }. To inspect available tag-sets in the "
        "SavedModel, please use the SavedModel CLI: `saved_model_cli`"
    )
    model = loaded(models["tagged"], tags=("gpu", "serve"))
    assert tfs.CLASSIFY_X_TO_Y in model.signature_def_map.signature_def
    np.testing.assert_allclose(model.predict(tfs.PREDICT_SIGNATURE, {"x": QUICK_START})["y"], [2.5, 3.0, 4.5])


def test_legacy_init_op_and_a_text_proto_load(models: dict[str, str]) -> None:
    model = loaded(models["legacy_text"])
    np.testing.assert_allclose(model.predict(tfs.PREDICT_SIGNATURE, {"x": QUICK_START})["y"], [2.5, 3.0, 4.5])


@pytest.mark.parametrize("legacy", [False, True], ids=["main_op", "legacy_init_op"])
def test_assets_are_read_from_the_versions_own_directory(tmp_path: Path, legacy: bool) -> None:
    built = tfs.build_tf1_vocab_lookup(str(tmp_path / "built"), ["good", "bad", "film"], legacy_init_op=legacy)
    moved = shutil.move(built, str(tmp_path / "moved"))  # the asset's recorded path no longer exists
    model = loaded(moved)
    out = model.predict(tfs.PREDICT_SIGNATURE, {"word": np.array([b"film", b"good", b"nope"], dtype=object)})
    assert out["id"].tolist() == [2, 0, -1]


@pytest.mark.parametrize(("iterations", "expected"), [(1, 2), (3, 6), (0, 0)])
def test_warmup_records_are_replayed_as_often_as_asked(models: dict[str, str], iterations: int, expected: int) -> None:
    assert loaded(models["half_plus_two"], warmup_iterations=iterations).warmup_requests == expected


def test_a_failing_warmup_record_fails_the_load(models: dict[str, str], tmp_path: Path) -> None:
    path = shutil.copytree(models["tf2"], tmp_path / "tf2")
    tfs.write_x_warmup_requests(str(path), [1.0], signature="nope")
    with pytest.raises(ModelLoadError, match='Warm-up request 0 failed: Serving signature name: "nope" not found'):
        loaded(str(path))


def test_signatures_the_warmup_file_leaves_out_get_one_synthetic_call(models: dict[str, str]) -> None:
    model = loaded(models["half_plus_two"])
    assert model.warmup_requests == 2  # the file's records: TF Serving's count
    # Its other predict-style signatures (float x in, y out) take a synthetic batch of zeros; the Example-based
    # classify/regress ones reject the guessed input, which is logged, never fatal.
    takes_floats = [
        name
        for name, sig in model.signatures.items()
        if name != tfs.PREDICT_SIGNATURE and all(not i.dtype.is_string for i in sig.inputs.values())
    ]
    assert takes_floats  # the fixture has some, or this test proves nothing
    assert model.synthetic_warmup_requests == len(takes_floats)
    assert loaded(models["half_plus_two"], warmup_iterations=0).synthetic_warmup_requests == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage, and no TFRecord framing at all", "Cannot read warm-up file"),
        (None, "Warm-up record 0 is not a PredictionLog"),
    ],
)
def test_an_unreadable_warmup_file_fails_the_load_unless_warm_up_is_off(
    models: dict[str, str], tmp_path: Path, content: bytes | None, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    import tensorflow as tf

    from model_server.model import WARMUP_FILE

    path = shutil.copytree(models["half_plus_two"], tmp_path / "v")
    warmup = path / WARMUP_FILE
    if content is None:  # a well-formed TFRecord whose record is not a PredictionLog
        with tf.io.TFRecordWriter(str(warmup)) as writer:
            writer.write(b"\x0a\xff truncated")  # field 1, 255 bytes long, cut short
    else:
        warmup.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        loaded(str(path))
    model = loaded(str(path), warmup=False)  # a tool that skips warm-up (bert-imdb-score) still loads the version
    assert model.warmup_requests == 0 and message in caplog.text
