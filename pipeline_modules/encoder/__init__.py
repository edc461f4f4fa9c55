"""BERT encoders in TF Hub format: convert Hugging Face checkpoints and resolve pipeline encoder handles."""

from pipeline_modules.encoder.handles import ResolvedEncoder, resolve_encoder
from pipeline_modules.encoder.hf_to_tfhub import convert

__all__ = ["ResolvedEncoder", "convert", "resolve_encoder"]
