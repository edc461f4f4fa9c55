"""BERT encoders in TF Hub format: convert Hugging Face checkpoints and resolve pipeline encoder handles.

One job per module, each importing only those before it: `layers` (the Keras BERT), `checkpoint` (reading a Hugging
Face checkpoint), `weights` (its tensors into the layers), `conversion` (the SavedModel, written atomically),
`handles` (a configured handle to a local encoder, converting once into a cache), `hf_to_tfhub` (the command line).
"""

from pipeline_modules.encoder.conversion import convert
from pipeline_modules.encoder.handles import ResolvedEncoder, resolve_encoder

__all__ = ["ResolvedEncoder", "convert", "resolve_encoder"]
