"""The converted SavedModel: TF Hub attributes and signature, and never a partial or clobbered output directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
import tensorflow_hub as hub

from pipeline_modules.encoder import conversion, convert


def test_tfhub_attributes_and_signature(minilm, minilm_checkpoint_dir):
    loaded = hub.load(minilm.path)
    assert isinstance(loaded.vocab_file, tf.saved_model.Asset)
    vocab_path = loaded.vocab_file.asset_path.numpy().decode()
    assert Path(vocab_path).read_bytes() == (minilm_checkpoint_dir / "vocab.txt").read_bytes()
    assert isinstance(loaded.do_lower_case, tf.Variable)
    assert loaded.do_lower_case.dtype == tf.bool and not loaded.do_lower_case.trainable
    assert bool(loaded.do_lower_case.numpy()) is True
    assert (minilm.vocab_file, minilm.do_lower_case, minilm.hidden_size) == (vocab_path, True, 384)

    serve = loaded.signatures["serving_default"]
    out = serve(
        input_word_ids=tf.constant([[101, 7592, 102]]),
        input_mask=tf.ones([1, 3], tf.int32),
        input_type_ids=tf.zeros([1, 3], tf.int32),
    )
    assert set(out) == {"pooled_output", "sequence_output", "default"}
    assert out["sequence_output"].shape == (1, 3, 384)


def test_crash_during_save_leaves_nothing_that_looks_complete(minilm_checkpoint_dir, tmp_path, monkeypatch):
    def crashing_save(model, export_dir, **kwargs):
        Path(export_dir).mkdir(parents=True)
        (Path(export_dir) / "saved_model.pb").write_bytes(b"partial")
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(conversion.tf.saved_model, "save", crashing_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        convert(minilm_checkpoint_dir, tmp_path / "out", num_layers=1)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(minilm_checkpoint_dir, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="overwrite"):
        convert(minilm_checkpoint_dir, tmp_path / "out")
