"""Checkpoint tensors into the layers: the older layout ('bert.' prefixes, gamma/beta, an MLM head, no pooler) and
missing files or tensors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_hub as hub
from safetensors.numpy import load_file, save_file

from pipeline_modules.encoder import convert, resolve_encoder
from pipeline_modules.encoder import weights as weights_module
from tests.pipeline_modules.encoder.bert_reference import (
    ATOL,
    RTOL,
    SENTENCES,
    numpy_bert,
    reference_args,
    run_encoder,
    tokenize,
)


def test_tiny_checkpoint_with_prefix_and_no_pooler(tiny_checkpoint, tmp_path, caplog):
    caplog.set_level("INFO", logger=weights_module.__name__)
    resolved = resolve_encoder(str(tiny_checkpoint), tmp_path)
    assert "no pooler.dense weights" in caplog.text
    assert "cls.predictions.bias" in caplog.text  # reported as unused
    assert Path(resolved.path).parent == tmp_path and Path(resolved.path).name.startswith("tiny-bert-")
    assert (resolved.hidden_size, resolved.do_lower_case) == (32, True)
    info = json.loads((Path(resolved.path) / "conversion.json").read_text())
    assert info["pooler"] == "identity-init"

    config = json.loads((tiny_checkpoint / "config.json").read_text())
    weights = load_file(str(tiny_checkpoint / "model.safetensors"))
    inputs = tokenize(resolved.vocab_file, resolved.do_lower_case, SENTENCES, seq_len=32)
    got = run_encoder(hub.KerasLayer(resolved.path), inputs)
    want = numpy_bert(weights, config, **reference_args(inputs))
    np.testing.assert_allclose(got["sequence_output"], want["sequence_output"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=ATOL, rtol=RTOL)

    # The cache key follows the files: touching the weights means converting again, into a new entry.
    os.utime(tiny_checkpoint / "model.safetensors", ns=(1_000_000_000, 1_000_000_000))
    assert resolve_encoder(str(tiny_checkpoint), tmp_path).path != resolved.path


def test_checkpoint_missing_vocab_or_weights_is_reported(tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        convert(broken, tmp_path / "out")
    weights = load_file(str(tiny_checkpoint / "model.safetensors"))
    del weights["bert.encoder.layer.1.output.dense.weight"]
    shutil.copy(tiny_checkpoint / "vocab.txt", broken / "vocab.txt")
    save_file(weights, str(broken / "model.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.output\.dense\.weight"):
        convert(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
