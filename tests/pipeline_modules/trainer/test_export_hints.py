"""The serving hints and method names the Trainer exports, as the model server reads them back."""

from __future__ import annotations

from model_server.example_apis import (
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_OUTPUT_CLASSES,
    CLASSIFY_OUTPUT_SCORES,
)
from model_server.hints import parse_serving_hints, serving_hints_json
from pipeline_modules import features
from pipeline_modules.trainer.export import SERVING_HINTS, SIGNATURE_METHODS
from tests.doubles import toy_model


def test_exported_hints_round_trip_and_match_the_toy_model() -> None:
    assert parse_serving_hints(serving_hints_json(SERVING_HINTS)) == SERVING_HINTS
    # The test double stands for the real model on the signatures it has (it has no `classify` signature).
    assert {name: SERVING_HINTS[name] for name in toy_model.SERVING_HINTS} == toy_model.SERVING_HINTS
    serving = SERVING_HINTS[features.SERVING_SIGNATURE]
    assert serving.non_empty_text_inputs == (features.TEXT_INPUT,)
    assert serving.input_features == {features.TEXT_INPUT: features.REVIEW_KEY}
    examples = SERVING_HINTS[features.EXAMPLES_SIGNATURE]
    assert examples.example_inputs == {features.EXAMPLES_INPUT: (features.REVIEW_KEY,)}
    classify = SERVING_HINTS[features.CLASSIFY_SIGNATURE]  # warm-up and the request log read its tf.Examples
    assert classify.example_inputs == {features.CLASSIFY_INPUT: (features.REVIEW_KEY,)}


def test_hints_name_only_the_exported_signatures() -> None:
    assert set(SERVING_HINTS) == {features.SERVING_SIGNATURE, features.EXAMPLES_SIGNATURE, features.CLASSIFY_SIGNATURE}
    assert set(SIGNATURE_METHODS) <= set(SERVING_HINTS)


def test_the_classify_signature_uses_tf_servings_names() -> None:
    """The server's Classify API finds the signature by these names (tf.saved_model.signature_constants)."""
    assert SIGNATURE_METHODS == {features.CLASSIFY_SIGNATURE: CLASSIFY_METHOD_NAME}
    assert features.CLASSIFY_METHOD_NAME == CLASSIFY_METHOD_NAME
    assert (features.CLASSIFY_INPUT, features.CLASSES_OUTPUT, features.SCORES_OUTPUT) == (
        CLASSIFY_INPUTS,
        CLASSIFY_OUTPUT_CLASSES,
        CLASSIFY_OUTPUT_SCORES,
    )
