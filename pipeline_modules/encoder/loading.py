"""A converted encoder built in-process: `build_encoder`'s Keras layers, holding the weights the converter saved.

Why: a TF Hub SavedModel restored through `hub.KerasLayer` is a fixed float32 graph, so Keras' mixed precision and
XLA cannot act on it. The SavedModels our converter writes are saved *from* those very layers, so the Trainer can
rebuild the same network as live Keras layers (under any dtype policy) and restore the saved variables into it by
object structure, the way `tf.train.Checkpoint` restores any Keras model. Encoders that exist only as SavedModels
(a TF Hub or Kaggle download) carry no `conversion.json` and stay with `hub.KerasLayer`.
"""

from __future__ import annotations

import collections
import json
import logging
from pathlib import Path
from typing import Any

import tensorflow as tf
import tf_keras as keras
from tensorflow.core.protobuf import trackable_object_graph_pb2

from pipeline_modules.encoder.checkpoint import source_fingerprint
from pipeline_modules.encoder.conversion import CONVERSION_INFO, CONVERTER_VERSION, is_complete_conversion
from pipeline_modules.encoder.layers import build_encoder

logger = logging.getLogger(__name__)

# Saved next to the weights by the TF Hub BERT conventions (the tokenizer's casing), not part of the network.
NON_NETWORK_VARIABLES = frozenset({"do_lower_case"})
# The Hugging Face config keys `build_encoder` reads, as `conversion.json` records them.
_RECORDED_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "hidden_act",
    "layer_norm_eps",
)
# Not recorded by converter version 1: taken from the source checkpoint's config.json while it is unchanged.
_SOURCE_ONLY_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")


def conversion_info(path: str | Path) -> dict[str, Any] | None:
    """`conversion.json` of a complete conversion by a converter version this code can rebuild, else None."""
    if not is_complete_conversion(path):
        return None
    try:
        info = json.loads((Path(path) / CONVERSION_INFO).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != "tfhub-bert-encoder":
        return None
    version = info.get("converter_version")
    return info if isinstance(version, int) and 1 <= version <= CONVERTER_VERSION else None


def is_converted_encoder(path: str | Path) -> bool:
    """True for an encoder our converter wrote (it can be rebuilt in-process), False for a foreign SavedModel."""
    return conversion_info(path) is not None


def _checkpoint_variables(prefix: str) -> dict[str, list[tuple[int, ...]]]:
    """Saved variable name -> shapes (names repeat: a layer's sublayers share its name scope), from the checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
        reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    )
    shapes = reader.get_variable_to_shape_map()
    found: dict[str, list[tuple[int, ...]]] = collections.defaultdict(list)
    for node in graph.nodes:
        for attribute in node.attributes:
            if attribute.name == "VARIABLE_VALUE":
                found[attribute.full_name].append(tuple(shapes[attribute.checkpoint_key]))
    return found


def encoder_config(path: str | Path) -> tuple[dict[str, Any], int]:
    """The Hugging Face config dict and layer count `build_encoder` needs to rebuild the conversion at `path`.

    Dropout rates (which `conversion.json` of converter version 1 does not record) come from the source checkpoint's
    `config.json` if it is still there unchanged, else BERT's defaults (`build_encoder`'s), as logged.
    """
    info = conversion_info(path)
    if info is None:
        raise ValueError(f"{path} is not a complete encoder conversion ({CONVERSION_INFO} missing or unknown)")
    config: dict[str, Any] = {key: info[key] for key in _RECORDED_KEYS}
    config.update({key: info[key] for key in _SOURCE_ONLY_KEYS if key in info})
    source = Path(str(info.get("source", "")))
    missing = [key for key in _SOURCE_ONLY_KEYS if key not in config]
    if missing and (source / "config.json").is_file() and source_fingerprint(source) == info.get("source_fingerprint"):
        source_config = json.loads((source / "config.json").read_text())
        config.update({key: source_config[key] for key in missing if key in source_config})
    elif missing:
        logger.info("Encoder %s: source checkpoint not at hand, %s at BERT's defaults", path, ", ".join(missing))
    type_shapes = _checkpoint_variables(str(Path(path) / "variables" / "variables")).get("embeddings/type_embeddings")
    if type_shapes:
        config["type_vocab_size"] = type_shapes[0][0]
    return config, int(info["num_layers"])


def restore_converted_weights(model: keras.Model, path: str | Path) -> None:
    """Restores the SavedModel's variables into `model` (a `build_encoder` model), failing unless all match 1:1.

    The restore follows the object graph (layer by layer, weight by weight), which is what decides which value goes
    where; the names and shapes are then compared as a whole, so a value left unused in the SavedModel (a layer
    more than the model has) or a weight left at its random initialisation (a layer fewer) is an error.
    """
    prefix = str(Path(path) / "variables" / "variables")
    saved = _checkpoint_variables(prefix)
    for name in NON_NETWORK_VARIABLES:
        saved.pop(name, None)
    built: dict[str, list[tuple[int, ...]]] = collections.defaultdict(list)
    for variable in model.variables:
        built[variable.name.split(":")[0]].append(tuple(variable.shape))
    differing = [
        f"{name} (saved {sorted(saved.get(name, []))}, rebuilt {sorted(built.get(name, []))})"
        for name in sorted(set(saved) | set(built))
        if sorted(saved.get(name, [])) != sorted(built.get(name, []))
    ]
    if differing:
        raise ValueError(
            f"Encoder {path}: its saved variables do not match the rebuilt network, by name and shape: "
            f"{'; '.join(differing)}"
        )
    status = tf.train.Checkpoint(root=model).read(prefix)
    status.expect_partial()  # the checkpoint also holds do_lower_case, compared away above
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(f"Encoder {path}: not every weight of the rebuilt network was found in it: {e}") from e


def load_converted_encoder(path: str | Path) -> keras.Model:
    """`build_encoder`'s model (named `bert_encoder`) for the conversion at `path`, with its saved weights.

    Built under the current Keras dtype policy, so a caller inside a `mixed_bfloat16` policy gets bfloat16 compute
    with float32 variables.
    """
    config, num_layers = encoder_config(path)
    model = build_encoder(config, num_layers)
    restore_converted_weights(model, path)
    logger.info("Encoder %s built in-process (%d layers, %s compute)", path, num_layers, model.compute_dtype)
    return model


__all__ = ["conversion_info", "encoder_config", "is_converted_encoder", "load_converted_encoder"]
