"""The serving hints the Trainer exports, as the model server reads them back."""

from __future__ import annotations

from model_server.hints import parse_serving_hints, serving_hints_json
from pipeline_modules import features
from pipeline_modules.trainer.export import SERVING_HINTS
from tests.doubles import toy_model


def test_exported_hints_round_trip_and_match_the_toy_model() -> None:
    assert parse_serving_hints(serving_hints_json(SERVING_HINTS)) == SERVING_HINTS
    assert toy_model.SERVING_HINTS == SERVING_HINTS  # the test double stands for the real model
    serving = SERVING_HINTS[features.SERVING_SIGNATURE]
    assert serving.non_empty_text_inputs == (features.TEXT_INPUT,)
    assert serving.input_features == {features.TEXT_INPUT: features.REVIEW_KEY}
    examples = SERVING_HINTS[features.EXAMPLES_SIGNATURE]
    assert examples.example_inputs == {features.EXAMPLES_INPUT: (features.REVIEW_KEY,)}


def test_hints_name_only_the_exported_signatures() -> None:
    assert set(SERVING_HINTS) == {features.SERVING_SIGNATURE, features.EXAMPLES_SIGNATURE}
