"""Reading a Hugging Face checkpoint: config checks, weight names, the files' fingerprint and the tokenizer's casing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from pipeline_modules.encoder.checkpoint import infer_do_lower_case, load_hf_weights, read_hf_config, source_fingerprint

BERT_CONFIG = {"hidden_size": 8, "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 5}


def _write_config(directory: Path, **config: object) -> Path:
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_config_of_the_minilm_checkpoint(minilm_checkpoint_dir: Path) -> None:
    config = read_hf_config(minilm_checkpoint_dir)
    assert (config["hidden_size"], config["num_hidden_layers"]) == (384, 6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_type": "roberta"}, "model_type 'roberta' is not supported"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
        ({"hidden_size": None}, r"lacks \['hidden_size'\]"),
    ],
    ids=["not-bert", "relative-positions", "missing-key"],
)
def test_configs_that_do_not_map_onto_the_layers_are_refused(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    config = {k: v for k, v in {**BERT_CONFIG, **overrides}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        read_hf_config(_write_config(tmp_path, **config))


def test_missing_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        read_hf_config(tmp_path)


def test_weights_lose_their_bert_prefix_and_may_not_appear_twice(tmp_path: Path) -> None:
    save_file({"bert.embeddings.a": np.ones([2], np.float32)}, str(tmp_path / "model-1.safetensors"))
    save_file({"pooler.dense.bias": np.zeros([2], np.float32)}, str(tmp_path / "model-2.safetensors"))
    assert sorted(load_hf_weights(tmp_path)) == ["embeddings.a", "pooler.dense.bias"]
    save_file({"embeddings.a": np.ones([2], np.float32)}, str(tmp_path / "model-3.safetensors"))
    with pytest.raises(ValueError, match="appears twice"):
        load_hf_weights(tmp_path)
    with pytest.raises(FileNotFoundError, match="No \\*.safetensors"):
        load_hf_weights(tmp_path / "elsewhere")


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    _write_config(tmp_path, **BERT_CONFIG)
    save_file({"embeddings.a": np.ones([2], np.float32)}, str(tmp_path / "model.safetensors"))
    before = source_fingerprint(tmp_path)
    assert source_fingerprint(tmp_path) == before
    os.utime(tmp_path / "model.safetensors", ns=(1_000_000_000, 1_000_000_000))
    assert source_fingerprint(tmp_path) != before


def test_casing_from_tokenizer_config_else_from_the_vocabulary(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[CLS]\nthe\n##s\n")
    assert infer_do_lower_case(tmp_path, vocab) is True
    vocab.write_text("[PAD]\n[CLS]\nThe\n##s\n")
    assert infer_do_lower_case(tmp_path, vocab) is False
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    assert infer_do_lower_case(tmp_path, vocab) is True
