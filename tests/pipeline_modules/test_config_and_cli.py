"""Presets, overrides and the command line's refusals (before any component runs)."""

from __future__ import annotations

import argparse

import pytest

from pipeline_modules import environment, local_runner
from pipeline_modules.config import PRESETS, PipelineConfig, add_config_arguments, config_for, overrides_from_args
from pipeline_modules.data import locate


def test_presets_are_values_of_one_config() -> None:
    for name in PRESETS:
        config = config_for(name)
        assert isinstance(config, PipelineConfig) and config.preset == name
    assert config_for("smoke").synthetic_reviews_per_class > 0
    assert config_for("full").max_examples_per_split == 0  # all 25,000 / 25,000
    assert config_for("full").serving_engine == "onnxruntime_int8"  # behind the gate, on all 25,000 eval reviews
    assert config_for("full").training_precision == "auto"  # bfloat16 only where the hardware computes it natively
    assert config_for("full").num_epochs == 2.0
    assert PipelineConfig().training_precision == "float32"  # the default elsewhere
    assert config_for("demo").serving_engine == "onnxruntime"  # 2,000 eval reviews cannot show int8 within 0.3


def test_every_field_can_be_overridden_from_the_command_line() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        [
            "--max-seq-length",
            "256",
            "--jit-compile",
            "false",
            "--head-fraction",
            "0.5",
            "--beam-pipeline-args",
            "--direct_running_mode=multi_processing --direct_num_workers=2",
        ]
    )
    config = config_for("demo", **overrides_from_args(args))
    assert config.max_seq_length == 256 and config.jit_compile is False and config.head_fraction == 0.5
    assert config.beam_pipeline_args == ("--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert config.max_examples_per_split == PRESETS["demo"]["max_examples_per_split"]


def test_invalid_settings_are_named() -> None:
    with pytest.raises(ValueError, match="head_fraction") as error:
        config_for("smoke", head_fraction=1.5, pooling="max")
    assert "pooling" in str(error.value)
    with pytest.raises(ValueError, match="Unknown configuration field"):
        config_for("smoke", max_seq_len=12)
    with pytest.raises(ValueError, match="Unknown preset"):
        config_for("huge")


def test_cli_refuses_bad_settings_before_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert local_runner.main(["--preset", "smoke", "--max-seq-length", "4"]) == 2
    assert "max_seq_length must be at least 8" in capsys.readouterr().err


def test_cli_without_data_says_how_to_provide_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IMDB_ARCHIVE", raising=False)
    monkeypatch.setattr(environment, "PROJECT_ROOT", tmp_path)  # no data/ copy there
    monkeypatch.setattr(locate, "tfds_reachable", lambda *a, **k: False)
    monkeypatch.setattr(locate, "prepared_tfds_dir", lambda *a, **k: None)
    assert local_runner.main(["--preset", "demo", "--pipeline-root", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err
    assert "IMDB_ARCHIVE" in err and "--imdb-archive" in err
    assert not (tmp_path / "root").exists()


def test_cli_names_a_missing_archive(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.tar.gz"
    assert local_runner.main(["--preset", "demo", "--imdb-archive", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_length_buckets_cover_every_length_in_order() -> None:
    from pipeline_modules import features

    assert [features.length_bucket(n) for n in (0, 127, 128, 255, 256, 511, 512, 2470)] == [
        "0000-0127",
        "0000-0127",
        "0128-0255",
        "0128-0255",
        "0256-0511",
        "0256-0511",
        "0512+",
        "0512+",
    ]
