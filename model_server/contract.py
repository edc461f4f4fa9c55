"""The serving contract's names, from the pipeline's single source of truth when it is importable.

``pipeline_modules.features`` holds plain constants (no TFX import), but a serving image may ship ``model_server``
alone, so the same values are mirrored here; a test checks that both agree.
"""

try:
    from pipeline_modules.features import (
        EXAMPLES_INPUT,
        EXAMPLES_SIGNATURE,
        LABEL_OUTPUT,
        NEGATIVE,
        POSITIVE,
        PROBABILITY_OUTPUT,
        REVIEW_KEY,
        SERVING_SIGNATURE,
        TEXT_INPUT,
    )
except ImportError:  # installed without the pipeline package
    SERVING_SIGNATURE = "serving_default"
    EXAMPLES_SIGNATURE = "from_examples"
    TEXT_INPUT = "text"
    EXAMPLES_INPUT = "examples"
    PROBABILITY_OUTPUT = "probability"
    LABEL_OUTPUT = "label"
    POSITIVE = "positive"
    NEGATIVE = "negative"
    REVIEW_KEY = "review"

__all__ = [
    "EXAMPLES_INPUT",
    "EXAMPLES_SIGNATURE",
    "LABEL_OUTPUT",
    "NEGATIVE",
    "POSITIVE",
    "PROBABILITY_OUTPUT",
    "REVIEW_KEY",
    "SERVING_SIGNATURE",
    "TEXT_INPUT",
]
