"""The Kubeflow V2 / Vertex compile: the same pipeline definition, container paths, configured values, no network."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_modules import kubeflow_v2_runner as kfp_runner
from pipeline_modules import pipeline as pipeline_definition
from pipeline_modules.config import PROJECT_ROOT, config_for
from stacks.compat import LEGACY_KERAS_ENV

IMAGE = "europe-west4-docker.pkg.dev/my-project/ml/bert-imdb-tfx:0.1"
ROOT = "gs://my-bucket/pipelines"
SERVING = "gs://my-bucket/serving_model"
DATA = "gs://my-bucket/data/aclImdb_v1.tar.gz"
ENCODER = "gs://my-bucket/encoders/all-MiniLM-L6-v2"
BEAM_ARGS = ("--runner=DataflowRunner", "--project=my-project", "--temp_location=gs://my-bucket/tmp")
IMAGE_ROOT = "/srv/bert-imdb"  # not the default, so the test sees the flag carried through
MAX_SEQ_LENGTH = 48  # not the smoke preset's 32, so the test sees the override carried through

# What create_pipeline wires, under the ids the local runner shows; the compiled job must run each of them.
EXPECTED_STEPS = {
    "ImdbExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Transform",
    "Tuner",
    "Trainer",
    "Evaluator",
    "InfraValidator",
    "Pusher",
}
BEAM_STEPS = ("StatisticsGen", "ExampleValidator", "Transform", "Evaluator")


def _parameters(job: dict[str, Any], task: str) -> dict[str, Any]:
    """A task's constant parameters, decoded from the pipeline spec's typed values."""
    values = {}
    for name, spec in job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"].get("parameters", {}).items():
        constant = spec["runtimeValue"]["constantValue"]
        (kind, value), *_ = constant.items()
        values[name] = int(value) if kind == "intValue" else value
    return values


def _container(job: dict[str, Any], task: str) -> dict[str, Any]:
    executor = job["pipelineSpec"]["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    component = job["pipelineSpec"]["components"][executor]
    return job["pipelineSpec"]["deploymentSpec"]["executors"][component["executorLabel"]]["container"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The smoke pipeline compiled once through the command line, as a user would; the written file is parsed."""
    output = tmp_path_factory.mktemp("kfp") / "bert-imdb-smoke.json"
    status = kfp_runner.main(
        [
            "--preset", "smoke",
            "--image", IMAGE,
            "--image-project-root", IMAGE_ROOT,
            "--pipeline-root", ROOT,
            "--serving-model-dir", SERVING,
            "--imdb-source", DATA,
            "--encoder-path", ENCODER,
            "--encoder-do-lower-case", "true",
            "--max-seq-length", str(MAX_SEQ_LENGTH),
            "--beam-pipeline-args", " ".join(BEAM_ARGS),
            "--training-accelerator", "NVIDIA_TESLA_T4",
            "--training-memory-gb", "32",
            "--output", str(output),
        ]
    )  # fmt: skip
    assert status == 0
    return json.loads(output.read_text()), output


def test_every_component_of_the_pipeline_is_a_step(compiled: tuple[dict[str, Any], Path]) -> None:
    job, _ = compiled
    tasks = set(job["pipelineSpec"]["root"]["dag"]["tasks"])
    assert tasks >= EXPECTED_STEPS
    resolvers = tasks - EXPECTED_STEPS
    assert resolvers and all(name.startswith("LatestBlessedModelResolver") for name in resolvers)
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == config_for("smoke").pipeline_name
    dag = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {"AnomaliesGate", "ImdbExampleGen", "ImportSchemaGen"} <= set(dag["Transform"]["dependentTasks"])
    assert "InfraValidator" in dag["Pusher"]["dependentTasks"] and "Evaluator" in dag["Pusher"]["dependentTasks"]


def test_modules_by_import_path_and_schema_in_the_image(compiled: tuple[dict[str, Any], Path]) -> None:
    job, _ = compiled
    functions = {
        ("Transform", "preprocessing_fn"): "pipeline_modules.transform_module.preprocessing_fn",
        ("Tuner", "tuner_fn"): "pipeline_modules.trainer_module.tuner_fn",
        ("Trainer", "run_fn"): "pipeline_modules.trainer_module.run_fn",
    }
    for (task, key), import_path in functions.items():
        assert _parameters(job, task)[key] == import_path
        assert "module_file" not in _parameters(job, task)  # nothing for TFX to package or to find by path
        module, name = import_path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name))  # the installed package has it
    relative = "pipeline_modules/schema/schema.pbtxt"
    assert _parameters(job, "ImportSchemaGen")["schema_file"] == f"{IMAGE_ROOT}/{relative}"
    assert (PROJECT_ROOT / relative).is_file()  # the image's copy of the repository has it at that place
    assert str(PROJECT_ROOT) not in json.dumps(job)  # nothing of this checkout leaks into the cluster's job


def test_own_trainer_module_file_is_found_in_the_image(tmp_path: Path) -> None:
    """`--trainer-module-file` stays a module file (a user's own), at its place in the image's copy of the repo."""
    config = config_for(
        "smoke", pipeline_root=ROOT, serving_model_dir=SERVING, imdb_source=DATA,
        trainer_module_file="my_modules/my_trainer.py",
    )  # fmt: skip
    encoder = kfp_runner.explicit_encoder(ENCODER, vocab_file=None, do_lower_case=True, image_project_root=IMAGE_ROOT)
    settings = kfp_runner.KubeflowSettings(image=IMAGE, encoder=encoder, image_project_root=IMAGE_ROOT)
    job = kfp_runner.compile_pipeline(config, settings, tmp_path / "job.json")
    for task, function in (("Tuner", "tuner_fn"), ("Trainer", "run_fn")):
        parameters = _parameters(job, task)
        assert parameters["module_file"] == f"{IMAGE_ROOT}/my_modules/my_trainer.py"
        assert function not in parameters
    assert _parameters(job, "Transform")["preprocessing_fn"] == pipeline_definition.PREPROCESSING_FN
    assert kfp_runner._NO_PACKAGING_ENV not in os.environ  # noqa: SLF001 - the switch must not outlive the compile


def test_configured_values_reach_the_steps(compiled: tuple[dict[str, Any], Path]) -> None:
    job, _ = compiled
    smoke = config_for("smoke")
    transform = json.loads(_parameters(job, "Transform")["custom_config"])
    assert transform["max_seq_length"] == MAX_SEQ_LENGTH
    assert transform["head_fraction"] == smoke.head_fraction
    assert transform["vocab_file"] == f"{ENCODER}/assets/vocab.txt" and transform["do_lower_case"] is True
    trainer = _parameters(job, "Trainer")
    assert json.loads(trainer["custom_config"])["encoder_path"] == ENCODER
    assert json.loads(trainer["train_args"])["num_steps"] == smoke.train_steps
    assert json.loads(_parameters(job, "Tuner")["custom_config"])["tuner_trials"] == smoke.tuner_trials
    example_gen = _parameters(job, "ImdbExampleGen")
    assert example_gen["source"] == "/gcs/my-bucket/data/aclImdb_v1.tar.gz"  # Vertex's Cloud Storage FUSE mount
    assert example_gen["seed"] == smoke.data_seed
    push = json.loads(_parameters(job, "Pusher")["push_destination"])
    assert push["filesystem"]["base_directory"] == f"{SERVING}/{smoke.model_name}"
    infra = _parameters(job, "InfraValidator")
    assert infra["model_name"] == smoke.model_name and infra["num_requests"] == smoke.infra_num_requests
    assert job["runtimeConfig"]["gcsOutputDirectory"] == ROOT


def test_every_step_runs_the_image_with_the_beam_args(compiled: tuple[dict[str, Any], Path]) -> None:
    job, _ = compiled
    for task in EXPECTED_STEPS:
        container = _container(job, task)
        assert container["image"] == IMAGE
        legacy_keras = [f"{key}={value}" for key, value in LEGACY_KERAS_ENV.items()]
        assert container["command"] == ["env", *legacy_keras, "python", "-m", kfp_runner.EXECUTOR_MODULE]
        assert not any(part.startswith("PYTHONPATH=") for part in container["command"])  # the image installs it
    for task in BEAM_STEPS:
        args = _container(job, task)["args"]
        assert args[-len(BEAM_ARGS) :] == list(BEAM_ARGS)
    for task in ("Tuner", "Trainer"):
        resources = _container(job, task)["resources"]
        assert resources["accelerator"] == {"type": "NVIDIA_TESLA_T4", "count": "1"}
        assert resources["memoryLimit"] == 32
    assert "resources" not in _container(job, "Transform")


def test_vertex_ai_sdk_and_kfp_schema_accept_the_job(compiled: tuple[dict[str, Any], Path]) -> None:
    """Offline checks of what a cluster would parse: KFP's PipelineSpec proto and the Vertex SDK's PipelineJob."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    job, path = compiled
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())  # unknown fields raise
    assert set(spec.root.dag.tasks) == set(job["pipelineSpec"]["root"]["dag"]["tasks"])
    vertex_job = aiplatform.PipelineJob(
        display_name="bert-imdb-smoke",
        template_path=str(path),
        pipeline_root=ROOT,
        project="my-project",
        location="europe-west4",
        credentials=AnonymousCredentials(),  # building the request needs no login; only submit() would
        enable_caching=False,
    )
    assert vertex_job.runtime_config.gcs_output_directory == ROOT
    assert set(vertex_job.pipeline_spec["root"]["dag"]["tasks"]) == set(spec.root.dag.tasks)


def test_compiling_touches_no_pipeline_root_and_leaves_the_environment_alone(tmp_path: Path) -> None:
    """TFX would otherwise build the module files into a wheel under the pipeline root (a bucket) while compiling."""
    root = tmp_path / "root"
    config = config_for(
        "demo",
        pipeline_root=str(root),
        serving_model_dir=str(tmp_path / "serving"),
        imdb_source="tfds",
        enable_tuner=False,
        hyperparameters_uri="gs://my-bucket/tuning/best_hyperparameters",
        infra_validator="off",
    )
    settings = kfp_runner.KubeflowSettings(
        image=IMAGE,
        encoder=kfp_runner.explicit_encoder(
            "https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/4",
            vocab_file="gs://my-bucket/vocab.txt",
            do_lower_case=True,
            image_project_root="/pipeline",
        ),
    )
    output = tmp_path / "out" / "job.yaml"  # .yaml: the bare PipelineSpec, what a Kubeflow Pipelines client uploads
    job = kfp_runner.compile_pipeline(config, settings, output)
    assert not root.exists()
    assert kfp_runner._NO_PACKAGING_ENV not in os.environ  # noqa: SLF001 - the switch must not outlive the compile
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert "HyperparametersImporter" in tasks and "Tuner" not in tasks and "InfraValidator" not in tasks
    importer = job["pipelineSpec"]["deploymentSpec"]["executors"]["HyperparametersImporter_executor"]["importer"]
    assert importer["artifactUri"]["constantValue"]["stringValue"] == config.hyperparameters_uri
    assert _parameters(job, "ImdbExampleGen")["source"] == "tfds"
    assert _parameters(job, "Transform")["preprocessing_fn"] == pipeline_definition.PREPROCESSING_FN
    assert json.loads(_parameters(job, "Transform")["custom_config"])["max_seq_length"] == config.max_seq_length
    assert yaml.safe_load(output.read_text()) == job["pipelineSpec"]
    from kfp.client import client as kfp_client

    package = kfp_client._extract_pipeline_yaml(str(output))  # noqa: SLF001 - how Client reads a package before upload
    assert package.pipeline_spec.pipeline_info.name == config.pipeline_name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pipeline_root": ""}, "--pipeline-root"),
        ({"serving_model_dir": "serving_model"}, "--serving-model-dir"),
        ({"imdb_source": ""}, "--imdb-source is required"),
        ({"imdb_source": "data/aclImdb_v1.tar.gz"}, "--imdb-source must be"),
        ({"infra_validator": "docker"}, "Docker daemon"),
    ],
)
def test_settings_that_cannot_work_on_a_cluster_are_refused(overrides: dict[str, str], message: str) -> None:
    values = {"pipeline_root": ROOT, "serving_model_dir": SERVING, "imdb_source": DATA, **overrides}
    with pytest.raises(ValueError, match=message):
        kfp_runner.check_config(config_for("smoke", **values))


def test_cli_reports_refusals_without_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "job.json"
    status = kfp_runner.main(
        ["--preset", "smoke", "--image", IMAGE, "--pipeline-root", ROOT, "--imdb-source", DATA]
        + ["--encoder-path", ENCODER, "--encoder-do-lower-case", "true", "--output", str(output)]
    )
    assert status == 2 and "--serving-model-dir" in capsys.readouterr().err and not output.exists()


def test_encoder_and_data_paths_as_the_containers_see_them() -> None:
    encoder = kfp_runner.explicit_encoder(
        "data/encoders/all-MiniLM-L6-v2", vocab_file=None, do_lower_case=False, image_project_root="/pipeline"
    )
    assert encoder.path == "/pipeline/data/encoders/all-MiniLM-L6-v2"
    assert encoder.vocab_file == "/pipeline/data/encoders/all-MiniLM-L6-v2/assets/vocab.txt"
    assert encoder.do_lower_case is False
    no_vocab = {"vocab_file": None, "do_lower_case": True, "image_project_root": "/pipeline"}
    with pytest.raises(ValueError, match="--encoder-vocab-file"):
        kfp_runner.explicit_encoder("https://tfhub.dev/x/1", **no_vocab)
    with pytest.raises(ValueError, match="--encoder-path"):
        kfp_runner.explicit_encoder("", **no_vocab)
    assert kfp_runner.container_data_path("gs://b/d/a.tar.gz", "/gcs") == "/gcs/b/d/a.tar.gz"
    assert kfp_runner.container_data_path("gs://b/d/a.tar.gz", "") == "gs://b/d/a.tar.gz"
    assert kfp_runner.container_data_path("tfds", "/gcs") == "tfds"


def test_a_compiled_step_runs_through_tfx_s_kubeflow_entrypoint(tmp_path: Path) -> None:
    """What a cluster node does with a step, minus the container: the compiled command and arguments, with the
    executor input Vertex AI substitutes for `{{$}}`; the repository stands where the image would hold it."""
    import subprocess
    import sys

    from pipeline_modules import data

    archive = tmp_path / "aclImdb_v1.tar.gz"
    data.write_synthetic_archive(archive, n_per_class=6, seed=3, max_words=20)
    config = config_for("smoke", pipeline_root=ROOT, serving_model_dir=SERVING, imdb_source=str(archive))
    encoder = kfp_runner.explicit_encoder(ENCODER, vocab_file=None, do_lower_case=True, image_project_root="/")
    settings = kfp_runner.KubeflowSettings(image=IMAGE, encoder=encoder, image_project_root=str(PROJECT_ROOT))
    job = kfp_runner.compile_pipeline(config, settings, tmp_path / "job.json")
    task = job["pipelineSpec"]["root"]["dag"]["tasks"]["ImdbExampleGen"]
    container = _container(job, "ImdbExampleGen")
    examples_uri, output_file = tmp_path / "out" / "examples", tmp_path / "out" / "executor_output.json"
    executor_input = {
        "inputs": {
            "parameters": {k: v["runtimeValue"]["constantValue"] for k, v in task["inputs"]["parameters"].items()}
        },
        "outputs": {
            "artifacts": {
                "examples": {
                    "artifacts": [
                        {"name": "examples", "type": {"schemaTitle": "tfx.Examples"}, "uri": str(examples_uri)}
                    ]
                }
            },
            "outputFile": str(output_file),
        },
    }
    command = [sys.executable if part == "python" else part for part in container["command"]]
    args = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in container["args"]]
    result = subprocess.run(command + args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {path.name for path in examples_uri.glob("Split-*")} == {"Split-train", "Split-eval"}
    (artifact,) = json.loads(output_file.read_text())["artifacts"]["examples"]["artifacts"]
    assert artifact["metadata"]["train_examples"] == 12 and artifact["metadata"]["eval_examples"] == 12
