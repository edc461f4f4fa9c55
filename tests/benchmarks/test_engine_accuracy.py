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
    archive, model = _archive_and_model(tmp_path, 10)
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


def _archive_and_model(tmp_path: Path, n_per_class: int, manifest: bool = True) -> tuple[Path, str]:
    """A generated archive and the tiny model (with its ONNX manifest, or without: TensorFlow serves it)."""
    from pipeline_modules.data import write_synthetic_archive
    from tests.doubles.onnx_sentiment import build_onnx_sentiment_model

    archive = tmp_path / "aclImdb_v1.tar.gz"
    write_synthetic_archive(archive, n_per_class=n_per_class, seed=5)
    return archive, build_onnx_sentiment_model(str(tmp_path / "tiny" / "3"), manifest=manifest)


def test_quantize_compares_both_int8_graphs_with_fp32_on_the_same_feeds(tmp_path: Path) -> None:
    archive, model = _archive_and_model(tmp_path, 10)
    output = tmp_path / "quantize.json"
    argv = [f"--imdb-archive={archive}", f"--model={model}", "--limit=12", "--batch-size=5", "--quantize"]
    assert engine_accuracy.main([*argv, f"--output={output}"]) == 0
    result = json.loads(output.read_text())
    assert result["reviews"] == 12 and set(result["graphs"]) == {"fp32", "int8_per_tensor", "int8_per_channel"}
    assert "accuracy_drop" not in result["graphs"]["fp32"]
    for name in ("int8_per_tensor", "int8_per_channel"):
        graph = result["graphs"][name]
        assert graph["accuracy_drop"] == pytest.approx(result["graphs"]["fp32"]["accuracy"] - graph["accuracy"])
        assert 0 <= graph["label_differences_vs_fp32"] <= 12
        assert graph["accuracy_drop_upper_95"] >= graph["accuracy_drop"]
        assert 0 < graph["max_abs_probability_difference_vs_fp32"] < 1  # quantized: not the fp32 graph
        assert 0 <= graph["reordered_label_changes"] <= 12 and 0 <= graph["reordered_accuracy"] <= 1
        # row by row, as the server runs int8: each text's score is its own, whatever batch it came in
        assert 0 <= graph["row_by_row_label_changes"] <= 12 and graph["row_by_row_graph_rows_per_s"] > 0
        assert graph["row_by_row_accuracy_drop_upper_95"] >= 0 or graph["row_by_row_label_differences_vs_fp32"] == 0


def test_quantize_passes_and_graphs_can_be_chosen(tmp_path: Path) -> None:
    archive, model = _archive_and_model(tmp_path, 6)
    output = tmp_path / "quantize.json"
    argv = [f"--imdb-archive={archive}", f"--model={model}", "--limit=8", "--batch-size=4", "--quantize"]
    argv += ["--graphs", "fp32", "int8_per_channel", "--passes", "batched", "row_by_row", f"--output={output}"]
    assert engine_accuracy.main(argv) == 0
    graphs = json.loads(output.read_text())["graphs"]
    assert set(graphs) == {"fp32", "int8_per_channel"}
    assert "row_by_row_accuracy" in graphs["int8_per_channel"]
    assert "reordered_accuracy" not in graphs["int8_per_channel"]


def test_quantize_refuses_a_version_without_an_fp32_graph(tmp_path: Path) -> None:
    archive, model = _archive_and_model(tmp_path, 4, manifest=False)  # TensorFlow serves it
    with pytest.raises(SystemExit, match="fp32 ONNX graph"):
        engine_accuracy.main([f"--imdb-archive={archive}", f"--model={model}", "--limit=4", "--quantize"])
