"""Flags and configuration files: tensorflow_model_server's names, formats and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_server import model_config
from model_server.config import parse_args, parse_bool
from model_server.model_config import BatchingOptions, ConfigError, VersionPolicy


def test_toy_model_names_match_the_pipeline() -> None:
    """The test double speaks the pipeline's serving contract (the server itself knows none of these names)."""
    from pipeline_modules import features
    from tests.doubles import toy_model

    for name in toy_model.CONTRACT_NAMES:
        assert getattr(toy_model, name) == getattr(features, name), name


def test_single_model_flags(tmp_path: Path) -> None:
    o = parse_args(["--model_name=sentiment", f"--model_base_path={tmp_path}", "--port=8500", "--rest_api_port=8501"])
    assert o.grpc_port == 8500 and o.rest_api_port == 8501
    assert o.host == "127.0.0.1"  # loopback unless asked otherwise
    assert [(m.name, m.base_path, m.policy) for m in o.models] == [("sentiment", str(tmp_path), VersionPolicy())]
    assert not o.enable_batching and o.file_system_poll_wait_seconds == 1.0
    assert o.custom_op_modules == ("tensorflow_text",)  # the pipeline's tokenizer ops load by default
    assert parse_args([f"--model_base_path={tmp_path}", "--custom_op_modules=a, b,"]).custom_op_modules == ("a", "b")


@pytest.mark.parametrize("flag", ["--enable_batching", "--enable_batching=true", "--enable_batching=1"])
def test_enable_batching_accepts_tf_serving_spellings(flag: str, tmp_path: Path) -> None:
    assert parse_args([f"--model_base_path={tmp_path}", flag]).enable_batching


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "either --model_base_path or --model_config_file"),
        (["--model_base_path=/x", "--port=0", "--rest_api_port=0"], "nothing to serve"),
        (["--model_base_path=/x", "--port=70000"], "--port must be"),
        (["--model_base_path=/x", "--rest_api_port=-2"], "--rest_api_port must be"),
        (["--model_base_path=/x", "--max_request_bytes=0"], "--max_request_bytes must be positive"),
        (["--model_base_path=/x", "--request_log_sample_rate=2"], "sample_rate"),
        (["--model_base_path=gs://bucket/models"], "only local file systems"),
        (["--model_config_file=/does/not/exist"], "cannot read --model_config_file"),
    ],
)
def test_bad_flags_are_reported(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_args(argv)


MODEL_CONFIG = """
# two models: pinned versions with labels, and the latest two of another
model_config_list {
  config {
    name: "sentiment"
    base_path: "/models/sentiment"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config {
    name: "other"
    base_path: "file:///models/other"
    model_version_policy { latest { num_versions: 2 } }
  }
  config { name: "everything" base_path: "/models/all" model_version_policy { all {} } }
}
"""


def test_model_config_file(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(MODEL_CONFIG)
    models = parse_args([f"--model_config_file={path}", "--rest_api_port=8501"]).models
    assert [m.name for m in models] == ["sentiment", "other", "everything"]
    sentiment, other, everything = models
    assert sentiment.policy == VersionPolicy("specific", versions=(1, 2))
    assert sentiment.labels == {"stable": 1, "canary": 2}
    assert other.base_path == "/models/other" and other.policy == VersionPolicy("latest", num_versions=2)
    assert everything.policy.kind == "all"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }",
            "appears twice",
        ),
        ("model_config_list { config { name: 'a' } }", "needs a base_path"),
        ("model_config_list { config { base_path: '/a' } }", "needs a name"),
        ("model_config_list { }", "no model configured"),
        ("model_config_list { config { name: 'a' base_path: '/a' model_platform: 'pytorch' } }", "tensorflow"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' model_version_policy { specific { } } } }",
            "lists no versions",
        ),
        ("model_config_list { config { nam: 'a' } }", "nam"),
        ("custom_model_config { }", "custom_model_config is not supported"),
    ],
)
def test_bad_model_configs(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        model_config.parse_model_config_text(text)


def test_version_policies_select_the_right_versions() -> None:
    candidates = [3, 1, 10, 2]
    assert VersionPolicy().select(candidates) == [10]
    assert VersionPolicy("latest", num_versions=2).select(candidates) == [10, 3]
    assert VersionPolicy("all").select(candidates) == [10, 3, 2, 1]
    assert VersionPolicy("specific", versions=(2, 7)).select(candidates) == [2]


def test_batching_parameters_file(tmp_path: Path) -> None:
    path = tmp_path / "batching.txt"
    path.write_text(
        "# TF Serving's format: wrapper messages\n"
        "max_batch_size { value: 32 }\n"
        "batch_timeout_micros { value: 5000 }\n"
        "num_batch_threads { value: 2 }\n"
        "max_enqueued_batches { value: 4 }\n"
        "allowed_batch_sizes: 8\nallowed_batch_sizes: 16\nallowed_batch_sizes: 32\n"
        "thread_pool_name { value: 'shared' }\n"
    )
    o = parse_args(["--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={path}"])
    assert o.batching == BatchingOptions(32, 5000, 2, 4, (8, 16, 32), False)


def test_batching_defaults_match_tf_serving() -> None:
    assert model_config.parse_batching_parameters_text("") == BatchingOptions(1000, 0, 0, 10, (), False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 32 } allowed_batch_sizes: 8 allowed_batch_sizes: 16", "must equal max_batch_size"),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 4 allowed_batch_sizes: 8",
            "strictly increasing",
        ),
        ("max_batch_size { value: 0 }", "max_batch_size must be positive"),
        ("max_batch_size: 32", r"1:17 .*Expected \"{\""),  # not a wrapper message: a parse error with position
    ],
)
def test_bad_batching_parameters(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        model_config.parse_batching_parameters_text(text, "batching")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("False", False), ("no", False)],
)
def test_parse_bool_accepts_the_usual_spellings(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


def test_parse_bool_refuses_anything_else() -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="expected true or false"):
        parse_bool("maybe")


def test_importing_the_package_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import sys, model_server, model_server.config, model_server.errors, model_server.client;"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported';"
        "assert not any(m.startswith('model_server.server') for m in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--port=1"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
