"""The one place where the two supported stacks (TFX 1.16 / TF 2.16 and TFX 1.21 / TF 2.21) differ at run time.

Everything else in the code base is written once for both; what one release renamed or dropped is bridged here,
so a reader who wonders "why does this differ on Python 3.13?" has one file to read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

# TFX's Trainer/Transform, TFMA and hub.KerasLayer work with Keras 2 (the tf_keras package) on both stacks;
# TensorFlow reads this variable once, when it is first imported, to choose tf.keras = tf_keras.
LEGACY_KERAS_ENV: Mapping[str, str] = {"TF_USE_LEGACY_KERAS": "1"}


def use_legacy_keras() -> None:
    """Choose Keras 2 for `tf.keras` in this process and the processes it starts (before TensorFlow loads)."""
    for key, value in LEGACY_KERAS_ENV.items():
        os.environ.setdefault(key, value)
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError("TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set: set it first")


def message_to_dict(message: Any, *, preserving_proto_field_name: bool = True) -> dict[str, Any]:
    """`json_format.MessageToDict` printing fields that hold their default value, on protobuf 4 and 5+ alike.

    protobuf 5.26 renamed `including_default_value_fields` to `always_print_fields_with_no_presence`.
    """
    from google.protobuf import json_format

    try:
        return json_format.MessageToDict(
            message,
            preserving_proto_field_name=preserving_proto_field_name,
            always_print_fields_with_no_presence=True,
        )
    except TypeError:  # protobuf < 5.26
        return json_format.MessageToDict(
            message, preserving_proto_field_name=preserving_proto_field_name, including_default_value_fields=True
        )
