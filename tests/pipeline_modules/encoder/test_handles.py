"""Encoder handle resolution: the offline default and its cache, truncation, SavedModels, URLs, bad paths."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow_hub as hub

from pipeline_modules.encoder import conversion, resolve_encoder
from pipeline_modules.encoder import handles as handles_module
from tests.pipeline_modules.encoder.bert_reference import (
    ATOL,
    RTOL,
    SENTENCES,
    numpy_bert,
    reference_args,
    run_encoder,
    tokenize,
)


def test_second_resolution_reuses_the_conversion(minilm, cache_dir, hf_config, monkeypatch, caplog):
    monkeypatch.setattr(handles_module, "convert", lambda *a, **kw: pytest.fail("converted again"))
    caplog.set_level("INFO", logger=handles_module.__name__)
    assert resolve_encoder("minilm", cache_dir) == minilm
    assert "Reusing converted encoder" in caplog.text
    assert resolve_encoder("", cache_dir) == minilm
    # num_layers equal to the model's depth is the full model, not a separate "-L6" cache entry.
    assert resolve_encoder(None, cache_dir, num_layers=hf_config["num_hidden_layers"]) == minilm
    assert sorted(p.name for p in cache_dir.iterdir()) == ["all-MiniLM-L6-v2"]


def test_num_layers_truncation_and_incomplete_cache(hf_weights, hf_config, tmp_path, monkeypatch):
    target = tmp_path / "all-MiniLM-L6-v2-L1"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"half-written")  # looks like a SavedModel, but no completion marker
    calls = []
    real_convert = handles_module.convert
    monkeypatch.setattr(handles_module, "convert", lambda *a, **kw: calls.append(kw) or real_convert(*a, **kw))
    resolved = resolve_encoder("minilm", tmp_path, num_layers=1)
    assert calls == [{"num_layers": 1, "overwrite": True}]
    assert resolved.path == str(target) and conversion.is_complete_conversion(target)

    inputs = tokenize(resolved.vocab_file, resolved.do_lower_case, SENTENCES[:3], seq_len=16)
    got = run_encoder(hub.KerasLayer(resolved.path), inputs)
    assert len(got["encoder_outputs"]) == 1
    want = numpy_bert(hf_weights, hf_config, **reference_args(inputs), num_layers=1)
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=ATOL, rtol=RTOL)
    for bad in (0, hf_config["num_hidden_layers"] + 1):
        with pytest.raises(ValueError, match="num_layers"):
            resolve_encoder(None, tmp_path, num_layers=bad)


def test_local_savedmodel_is_used_as_is_and_described_from_the_model(minilm, tmp_path):
    copy = tmp_path / "plain_savedmodel"
    shutil.copytree(minilm.path, copy)
    (copy / "conversion.json").unlink()  # like an official TF Hub download: only the SavedModel's own attributes
    resolved = resolve_encoder(str(copy), tmp_path / "cache")
    assert resolved.path == str(copy)
    assert resolved.vocab_file == str(copy / "assets" / "vocab.txt")
    assert (resolved.do_lower_case, resolved.hidden_size) == (True, 384)
    assert not (tmp_path / "cache").exists()  # nothing converted
    with pytest.raises(ValueError, match="num_layers"):
        resolve_encoder(str(copy), tmp_path / "cache", num_layers=2)


def test_url_without_network_gives_a_clear_error(tmp_path, monkeypatch):
    def offline(handle):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(handles_module.hub, "resolve", offline)
    url = "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-512_A-8/2"
    with pytest.raises(ConnectionError, match="unreachable") as excinfo:
        resolve_encoder(url, tmp_path)
    assert "minilm" in str(excinfo.value) and "local path" in str(excinfo.value)


def test_url_resolves_through_tensorflow_hub(minilm, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(handles_module.hub, "resolve", lambda handle: seen.append(handle) or minilm.path)
    url = "https://www.kaggle.com/models/tensorflow/bert/TensorFlow2/en-uncased-l-12-h-768-a-12/3"
    resolved = resolve_encoder(url, tmp_path)
    assert seen == [url]
    assert (resolved.path, resolved.handle, resolved.hidden_size) == (minilm.path, url, 384)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda d: d / "does-not-exist", FileNotFoundError, "not an existing path"),
        (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", ValueError, "is a file"),
        (lambda d: d, ValueError, "neither a TF Hub SavedModel"),
        (lambda d: (d / "config.json").write_text("{}") and d, ValueError, "neither a TF Hub SavedModel"),
    ],
    ids=["missing", "file", "empty-dir", "config-without-weights"],
)
def test_bad_handles_give_clear_errors(tmp_path, make, error, message):
    handle_dir = tmp_path / "handle"
    handle_dir.mkdir()
    with pytest.raises(error, match=message):
        resolve_encoder(str(make(handle_dir)), tmp_path / "cache")
