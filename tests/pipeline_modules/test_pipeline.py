"""A whole `smoke` pipeline through LocalDagRunner, then the artifacts and the pushed model's contract."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline_modules import features
from pipeline_modules.config import config_for
from pipeline_modules.local_runner import prepare_data_source, run
from pipeline_modules.run_summary import RunSummary, latest_run

pytestmark = pytest.mark.slow

EXPECTED_COMPONENTS = {
    "ImdbExampleGen",
    "ImportSchemaGen",
    "StatisticsGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Transform",
    "Tuner",
    "Trainer",
    "LatestBlessedModelResolver",
    "Evaluator",
    "InfraValidator",
    "Pusher",
    "BulkInferrer",  # the smoke run turns bulk_inference on (README: --bulk-inference true)
}
REVIEWS = [
    "An absolute triumph: moving, funny and beautifully acted. I loved every minute.",
    "Dreadful. The plot makes no sense and the acting is wooden; a waste of two hours.",
    "",
    "Café culture, naïve heroes and a <br /><br />twist ending.",
]


@dataclasses.dataclass
class SmokeRun:
    config: object
    summary: RunSummary
    serving_dir: Path


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, smoke_encoder) -> SmokeRun:
    root = tmp_path_factory.mktemp("smoke-pipeline")
    config = config_for(
        "smoke", pipeline_root=str(root / "root"), serving_model_dir=str(root / "serving"), bulk_inference=True
    )
    source = prepare_data_source(config, None)
    assert run(config, source=source, encoder=smoke_encoder) == 0
    summary = latest_run(config.metadata_path_resolved, config.pipeline_name)
    return SmokeRun(config=config, summary=summary, serving_dir=config.push_destination)


@pytest.fixture(scope="module")
def pushed_model(smoke_run: SmokeRun):
    versions = [p for p in smoke_run.serving_dir.iterdir() if p.name.isdigit()]
    assert len(versions) == 1
    return tf.saved_model.load(str(versions[0]))


def test_every_component_ran(smoke_run: SmokeRun) -> None:
    states = {c.component_id: c.state for c in smoke_run.summary.components}
    assert set(states) == EXPECTED_COMPONENTS
    assert set(states.values()) == {"COMPLETE"}


def test_pushes_one_complete_version_in_tf_serving_layout(smoke_run: SmokeRun) -> None:
    entries = sorted(p.name for p in smoke_run.serving_dir.iterdir())
    assert len(entries) == 1 and entries[0].isdigit(), entries  # no staging directory left behind
    version_dir = smoke_run.serving_dir / entries[0]
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables" / "variables.index").is_file()
    assert smoke_run.summary.pushed is True
    assert smoke_run.summary.pushed_destination == str(version_dir)
    assert smoke_run.summary.blessed is True


def test_ingestion_counts_are_recorded(smoke_run: SmokeRun) -> None:
    (examples,) = [a for a in smoke_run.summary.artifacts["Examples"] if "imdb_report" in a.custom_properties]
    props = {k: (v.int_value or v.string_value) for k, v in examples.custom_properties.items()}
    kept = 2 * smoke_run.config.synthetic_reviews_per_class
    for split in ("train", "eval"):
        # The smoke archive holds bad files (empty, not UTF-8, no rating ...): dropped and counted, never lost.
        assert props[f"{split}_kept"] == kept == props[f"{split}_examples"]
        assert props[f"{split}_dropped"] > 0
        assert props[f"{split}_read"] == props[f"{split}_kept"] + props[f"{split}_dropped"]
    report = props["imdb_report"]
    assert "empty" in report and "not_utf8" in report and "no_rating" in report


def test_eval_metrics_cover_the_eval_split_and_its_slices(smoke_run: SmokeRun) -> None:
    metrics = smoke_run.summary.eval_metrics
    overall = metrics["Overall"]
    assert overall["example_count"] == 2 * smoke_run.config.synthetic_reviews_per_class
    assert 0.0 <= overall["binary_accuracy"] <= 1.0
    assert {"auc", "precision", "recall", "calibration"} <= set(overall)
    ratings = [name for name in metrics if name.startswith("rating=")]
    assert ratings and sum(metrics[name]["example_count"] for name in ratings) == overall["example_count"]
    buckets = [name for name in metrics if name.startswith("length_bucket=")]
    assert buckets and sum(metrics[name]["example_count"] for name in buckets) == overall["example_count"]


def test_trainer_writes_logs_and_curve(smoke_run: SmokeRun) -> None:
    (model_run,) = smoke_run.summary.artifacts["ModelRun"]
    run_dir = Path(model_run.uri)
    assert list(run_dir.rglob("events.out.tfevents.*"))
    curve = json.loads((run_dir / "training_curve.json").read_text())
    assert curve["steps"][-1]["step"] == smoke_run.config.train_steps
    assert all(np.isfinite(point["loss"]) for point in curve["steps"])


def _serialized_examples(reviews: list[str]) -> tf.Tensor:
    return tf.constant(
        [
            tf.train.Example(
                features=tf.train.Features(
                    feature={features.REVIEW_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[r.encode()]))}
                )
            ).SerializeToString()
            for r in reviews
        ]
    )


def test_serving_signatures_contract(pushed_model) -> None:
    serving = pushed_model.signatures[features.SERVING_SIGNATURE]
    examples = pushed_model.signatures[features.EXAMPLES_SIGNATURE]
    assert set(serving.structured_input_signature[1]) == {features.TEXT_INPUT}
    assert set(examples.structured_input_signature[1]) == {features.EXAMPLES_INPUT}
    by_text = serving(text=tf.constant(REVIEWS))
    by_example = examples(examples=_serialized_examples(REVIEWS))
    assert set(by_text) == set(by_example) == {features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT}
    probability = by_text[features.PROBABILITY_OUTPUT].numpy()
    assert probability.dtype == np.float32 and probability.shape == (len(REVIEWS),)
    assert np.all((probability >= 0) & (probability <= 1))
    np.testing.assert_allclose(by_example[features.PROBABILITY_OUTPUT].numpy(), probability, atol=1e-6)
    labels = [label.decode() for label in by_text[features.LABEL_OUTPUT].numpy()]
    assert labels == [features.POSITIVE if p >= 0.5 else features.NEGATIVE for p in probability]


def test_pushed_model_carries_its_serving_hints(smoke_run: SmokeRun) -> None:
    """The server learns from the model itself that `text` must be non-empty (model_server/hints.py)."""
    from model_server.hints import HINTS_FILE, read_serving_hints
    from pipeline_modules.trainer.explain import EXPLAIN_HINTS, EXPLAIN_SIGNATURE
    from pipeline_modules.trainer.export import SERVING_HINTS

    (version,) = [p for p in smoke_run.serving_dir.iterdir() if p.name.isdigit()]
    assert (version / HINTS_FILE).is_file()
    assert read_serving_hints(str(version)) == {**SERVING_HINTS, EXPLAIN_SIGNATURE: EXPLAIN_HINTS}


def test_same_text_same_probability_alone_or_in_a_batch(pushed_model) -> None:
    serving = pushed_model.signatures[features.SERVING_SIGNATURE]
    batch = serving(text=tf.constant(REVIEWS))[features.PROBABILITY_OUTPUT].numpy()
    alone = [serving(text=tf.constant([r]))[features.PROBABILITY_OUTPUT].numpy()[0] for r in REVIEWS]
    np.testing.assert_allclose(alone, batch, atol=1e-5)


def test_summary_names_the_pushed_model(smoke_run: SmokeRun) -> None:
    from pipeline_modules.run_summary import format_summary

    text = format_summary(smoke_run.summary)
    assert "Pushed model: " + str(smoke_run.summary.pushed_destination) in text
    assert "binary_accuracy" in text


# --- The validation gates: only good, servable models reach serving_model/ -------------------------------------

BROKEN_SIGNATURE_MODULE = '''
"""Trains like the real module, then exports a model that cannot serve: serving_default is gone."""
import tensorflow as tf

from pipeline_modules import trainer_module
from pipeline_modules.trainer_module import tuner_fn  # noqa: F401


def run_fn(fn_args):
    trainer_module.run_fn(fn_args)
    exported = fn_args.serving_model_dir
    model = tf.saved_model.load(exported)
    signatures = {"from_examples": model.signatures["from_examples"]}
    tf.saved_model.save(model, exported + "-broken", signatures=signatures)
    tf.io.gfile.rmtree(exported)
    tf.io.gfile.rename(exported + "-broken", exported)
'''


def _rerun(smoke_run: SmokeRun, smoke_encoder, **overrides) -> RunSummary:
    config = dataclasses.replace(smoke_run.config, **overrides).validate()
    assert run(config, source=prepare_data_source(config, None), encoder=smoke_encoder) == 0
    return latest_run(config.metadata_path_resolved, config.pipeline_name)


@pytest.fixture(scope="module")
def worse_run(smoke_run: SmokeRun, smoke_encoder) -> RunSummary:
    """Same data, a model that barely trained: one step at a negligible learning rate, no tuning."""
    return _rerun(smoke_run, smoke_encoder, enable_tuner=False, train_steps=1, learning_rate=1e-9)


@pytest.fixture(scope="module")
def broken_run(smoke_run: SmokeRun, smoke_encoder, tmp_path_factory: pytest.TempPathFactory) -> RunSummary:
    module_dir = tmp_path_factory.mktemp("broken_module")
    (module_dir / "broken_trainer.py").write_text(BROKEN_SIGNATURE_MODULE)
    return _rerun(smoke_run, smoke_encoder, trainer_module_file=str(module_dir / "broken_trainer.py"))


def _versions(smoke_run: SmokeRun) -> list[str]:
    return sorted(p.name for p in smoke_run.serving_dir.iterdir())


def test_first_run_is_judged_on_the_absolute_bar_and_infra_validated(smoke_run: SmokeRun) -> None:
    assert smoke_run.summary.blessed is True
    assert smoke_run.summary.infra_blessed is True
    assert "REST and gRPC" in smoke_run.summary.infra_reason
    (infra,) = smoke_run.summary.artifacts["InfraBlessing"]
    warmup = Path(infra.uri) / "stamped_model" / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.is_file()  # the pushed copy carries TF Serving warm-up requests
    version_dir = smoke_run.serving_dir / _versions(smoke_run)[0]
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_tuner_trials_feed_the_trainer(smoke_run: SmokeRun) -> None:
    (best,) = smoke_run.summary.artifacts["HyperParameters"]
    values = json.loads((Path(best.uri) / "best_hyperparameters.txt").read_text())["values"]
    assert values["learning_rate"] in smoke_run.config.tuner_learning_rates
    (model_run,) = smoke_run.summary.artifacts["ModelRun"]
    trained_with = json.loads((Path(model_run.uri) / "training_summary.json").read_text())["hyperparameters"]
    assert trained_with["learning_rate"] == values["learning_rate"]
    assert trained_with["dropout"] == values["dropout"]


def test_worse_model_is_not_blessed_and_not_pushed(smoke_run: SmokeRun, worse_run: RunSummary) -> None:
    before = _versions(smoke_run)
    assert worse_run.eval_metrics["Overall"]["binary_accuracy"] < (
        smoke_run.summary.eval_metrics["Overall"]["binary_accuracy"] - smoke_run.config.baseline_tolerance
    )
    assert worse_run.blessed is False
    assert worse_run.pushed is False
    assert _versions(smoke_run) == before and len(before) == 1


def test_unservable_model_fails_infra_validation_and_is_not_pushed(smoke_run: SmokeRun, broken_run: RunSummary) -> None:
    assert broken_run.infra_blessed is False
    assert "serving_default" in broken_run.infra_reason
    assert broken_run.pushed is False
    assert len(_versions(smoke_run)) == 1


EXPLAIN_REVIEWS = [
    "An absolute triumph: moving, funny and beautifully acted. I loved every minute.",
    "Dreadful. The plot makes no sense and the acting is wooden; a waste of two hours.",
    "Café culture, naïve heroes and a <br /><br />twist ending.",
    " ".join(["The film was long and the plot was thin, but the acting was good."] * 5),  # > 32 tokens
]


def test_the_pushed_model_explains_its_scores(pushed_model) -> None:
    """The `explain` signature on the real export: serving_default's probability, the review's words, completeness."""
    from pipeline_modules.trainer import explain

    text = tf.constant(EXPLAIN_REVIEWS)
    out = {k: v.numpy() for k, v in pushed_model.signatures[explain.EXPLAIN_SIGNATURE](text=text).items()}
    served = pushed_model.signatures[features.SERVING_SIGNATURE](text=text)
    np.testing.assert_allclose(out[features.PROBABILITY_OUTPUT], served[features.PROBABILITY_OUTPUT], atol=1e-5)
    for row, review in enumerate(EXPLAIN_REVIEWS):
        words = review.replace("<br /><br />", " ").split()
        assert out[explain.WORD_COUNT_OUTPUT][row] == len(words)
        assert [w.decode() for w in out[explain.WORDS_OUTPUT][row][: len(words)]] == words
    delta = out[features.PROBABILITY_OUTPUT] - out[explain.BASELINE_PROBABILITY_OUTPUT]
    miss = np.abs(out[explain.ATTRIBUTIONS_OUTPUT].sum(axis=1) - delta)
    assert np.all(miss < 5e-3), (miss, delta)  # the smoke preset's explain_steps, a 2-layer MiniLM
    assert out[explain.TRUNCATED_OUTPUT][3].any() and not out[explain.TRUNCATED_OUTPUT][:3].any()


def test_bulk_inferrer_scores_every_eval_example_as_the_pushed_model_does(smoke_run: SmokeRun, pushed_model) -> None:
    (scored,) = [a for a in smoke_run.summary.artifacts["Examples"] if "BulkInferrer" in a.uri]
    files = tf.io.gfile.glob(f"{scored.uri}/Split-eval/*")
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    rows = []
    for record in records.as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        rows.append(
            (
                feature["review"].bytes_list.value[0].decode(),
                feature["label"].int64_list.value[0],  # the true label is kept beside the model's
                feature["probability"].float_list.value[0],
                feature["predicted_label"].bytes_list.value[0].decode(),
            )
        )
    assert len(rows) == 2 * smoke_run.config.synthetic_reviews_per_class  # every kept eval example, none lost
    answer = pushed_model.signatures[features.SERVING_SIGNATURE](
        **{features.TEXT_INPUT: tf.constant([r[0] for r in rows])}
    )
    np.testing.assert_allclose([r[2] for r in rows], answer[features.PROBABILITY_OUTPUT].numpy(), atol=1e-5)
    assert [r[3] for r in rows] == [v.decode() for v in answer[features.LABEL_OUTPUT].numpy()]
    assert {r[1] for r in rows} == {0, 1}


def test_the_pushed_version_carries_its_onnx_engine_and_the_server_ran_it(smoke_run: SmokeRun) -> None:
    from model_server.onnx_manifest import read_onnx_manifest

    (version,) = [p for p in smoke_run.serving_dir.iterdir() if p.name.isdigit()]
    manifest = read_onnx_manifest(str(version))
    spec = manifest[features.SERVING_SIGNATURE]
    assert (version / spec.graph).is_file() and spec.precision == "fp32"
    assert spec.measured["max_abs_diff"] <= spec.tolerance == 1e-4
    assert smoke_run.summary.serving_engine == "onnxruntime fp32"  # what InfraValidator's server logged it ran
