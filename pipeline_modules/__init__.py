"""What TFX runs: configuration, data, encoder, transform and trainer modules, components, pipeline, runners."""

import os

# TFX 1.16, TFMA and hub.KerasLayer need Keras 2 (tf_keras); TensorFlow 2.16 reads this once, at its first import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
