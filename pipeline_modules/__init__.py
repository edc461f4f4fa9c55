"""What TFX runs: configuration, data, encoder, transform and trainer modules, components, pipeline, runners.

Importing the package chooses Keras 2 for `tf.keras` (TFX, TFMA and hub.KerasLayer use it), before any of its
modules imports TensorFlow.
"""

from stacks.compat import use_legacy_keras

use_legacy_keras()
