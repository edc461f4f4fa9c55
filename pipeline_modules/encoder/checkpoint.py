"""Reading a Hugging Face-layout BERT checkpoint (``config.json`` + ``*.safetensors`` + ``vocab.txt``) without PyTorch.

Also the facts about a checkpoint that conversion and caching need: a cheap fingerprint of its files, and the casing
its tokenizer expects. Weights are read with ``safetensors`` into NumPy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file


def read_hf_config(hf_dir: Path) -> dict[str, Any]:
    """Reads and sanity-checks ``config.json``; only absolute-position BERT maps onto this architecture."""
    config_path = hf_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: expected a Hugging Face BERT checkpoint directory")
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(f"{config_path}: model_type {model_type!r} is not supported, only 'bert'")
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(f"{config_path}: position_embedding_type {position_type!r} is not supported, only 'absolute'")
    missing = [k for k in ("hidden_size", "num_attention_heads", "intermediate_size", "vocab_size") if k not in config]
    if missing:
        raise ValueError(f"{config_path} lacks {missing}")
    return config


def load_hf_weights(hf_dir: Path) -> dict[str, np.ndarray]:
    """Loads every ``*.safetensors`` shard into NumPy, with a leading ``bert.`` stripped from the names."""
    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No *.safetensors file in {hf_dir}: expected a Hugging Face BERT checkpoint")
    weights: dict[str, np.ndarray] = {}
    for path in files:
        for name, value in load_file(str(path)).items():
            name = name.removeprefix("bert.")
            if name in weights:
                raise ValueError(f"Weight {name!r} appears twice in {hf_dir} (with and without a 'bert.' prefix?)")
            weights[name] = value
    return weights


def source_fingerprint(hf_dir: str | Path) -> str:
    """A SHA-256 over the names, sizes and mtimes of the checkpoint's files: cheap, and changes when they change.

    Content hashing would cost seconds per resolution on a BERT-large checkpoint; a copied checkpoint (new mtimes)
    merely gets converted once more.
    """
    hf_dir = Path(hf_dir)
    files = sorted(
        list(hf_dir.glob("*.safetensors"))
        + [hf_dir / n for n in ("config.json", "vocab.txt", "tokenizer_config.json") if (hf_dir / n).is_file()]
    )
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def infer_do_lower_case(hf_dir: Path, vocab_path: Path) -> bool:
    """Takes the casing from ``tokenizer_config.json``, else guesses it from the vocabulary.

    An uncased vocabulary has no capital letters outside the bracketed special tokens such as ``[CLS]``.
    """
    tokenizer_config = hf_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        value = json.loads(tokenizer_config.read_text()).get("do_lower_case")
        if isinstance(value, bool):
            return value
    with vocab_path.open(encoding="utf-8") as f:
        for line in f:
            token = line.rstrip("\n")
            if not (token.startswith("[") and token.endswith("]")) and token != token.lower():
                return False
    return True
