"""benchmarks/engine_accuracy.py on a generated archive and the tiny ONNX-manifest model: both engines score every
review, the served one is ONNX Runtime, and they agree within the manifest's tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import engine_accuracy

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")


def test_engine_accuracy_compares_the_served_engine_with_tensorflow(tmp_path: Path) -> None:
    from pipeline_modules.data import write_synthetic_archive
    from tests.doubles.onnx_sentiment import build_onnx_sentiment_model

    archive = tmp_path / "aclImdb_v1.tar.gz"
    write_synthetic_archive(archive, n_per_class=10, seed=5)
    model = build_onnx_sentiment_model(str(tmp_path / "tiny" / "3"))
    output = tmp_path / "engine-accuracy.json"
    argv = [f"--imdb-archive={archive}", f"--model={Path(model).parent}", "--limit=12", "--batch-size=5"]
    assert engine_accuracy.main([*argv, f"--output={output}"]) == 0
    result = json.loads(output.read_text())
    assert result["reviews"] == 12 and result["version"] == 3
    assert result["served_engine"].startswith("onnxruntime fp32")
    assert result["runs"]["tensorflow"]["engine"] == "tensorflow"
    assert result["max_abs_probability_difference"] <= 1e-5  # the double's manifest tolerance
    assert result["label_disagreements"] == 0 and result["accuracy_drop"] == 0
    for run in result["runs"].values():
        assert 0 <= run["accuracy"] <= 1 and run["rows_per_s"] > 0


def test_engine_accuracy_needs_an_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMDB_ARCHIVE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        engine_accuracy.main(["--model=/nonexistent"])
    assert exit_info.value.code == 2
