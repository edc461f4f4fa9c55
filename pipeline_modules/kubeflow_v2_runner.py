"""Compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines with TFX's KubeflowV2DagRunner.

    python -m pipeline_modules.kubeflow_v2_runner --preset full \\
        --image REGION-docker.pkg.dev/PROJECT/REPO/bert-imdb-tfx:TAG \\
        --pipeline-root gs://BUCKET/pipelines --serving-model-dir gs://BUCKET/serving_model \\
        --imdb-source gs://BUCKET/data/aclImdb_v1.tar.gz \\
        --encoder-path gs://BUCKET/encoders/all-MiniLM-L6-v2 --encoder-do-lower-case true \\
        --output bert-imdb-full.json

The pipeline is the one `create_pipeline` builds for the local runner; only the environment differs. Compiling
reads no data, no encoder and no bucket, so it works offline: where the local runner finds the data and converts
the encoder, this runner takes those facts as flags. Every component runs in `--image` (deploy/pipeline/Dockerfile):
the TFX stack with this package installed, so Transform, Tuner, Trainer and the custom components are found by import
path, and this repository at `--image-project-root`, where the curated schema and files given as relative paths (an
encoder, your own `--trainer-module-file`) are read.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_server.config import parse_bool
from pipeline_modules.config import (
    PRESETS,
    PROJECT_ROOT,
    PipelineConfig,
    add_config_arguments,
    config_for,
    describe_presets,
    overrides_from_args,
)
from pipeline_modules.encoder import ResolvedEncoder
from stacks.compat import LEGACY_KERAS_ENV

logger = logging.getLogger("pipeline_modules.kubeflow_v2_runner")

DEFAULT_IMAGE_PROJECT_ROOT = "/pipeline"  # TFX's templates copy the pipeline there (WORKDIR /pipeline)
DEFAULT_GCS_MOUNT = "/gcs"  # Vertex AI Pipelines mounts every bucket there with Cloud Storage FUSE
EXECUTOR_MODULE = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
# TFX's user-module packaging switch; read when a component with a `module_file` is constructed.
_NO_PACKAGING_ENV = "UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES"


@dataclass(frozen=True)
class ResourceRequest:
    """What the training steps (Tuner, Trainer) ask the cluster for; zero/empty leaves the platform's default."""

    cpu: float = 0.0
    memory_gb: float = 0.0
    accelerator: str = ""  # e.g. NVIDIA_TESLA_T4, NVIDIA_L4
    accelerator_count: int = 0

    def is_set(self) -> bool:
        return bool(self.cpu or self.memory_gb or self.accelerator)


@dataclass(frozen=True)
class KubeflowSettings:
    """What a cluster run needs beyond `PipelineConfig`: the container, where the repo sits in it, the encoder."""

    image: str
    encoder: ResolvedEncoder
    image_project_root: str = DEFAULT_IMAGE_PROJECT_ROOT
    gcs_mount: str = DEFAULT_GCS_MOUNT
    training_resources: ResourceRequest = ResourceRequest()


def _is_location(value: str) -> bool:
    """A place a container can reach: a URI or an absolute path (a mounted volume), never one relative to here."""
    return "://" in value or value.startswith("/")


def _in_image(value: str, image_project_root: str) -> str:
    return value if _is_location(value) else f"{image_project_root.rstrip('/')}/{value}"


def container_data_path(source: str, gcs_mount: str) -> str:
    """The ExampleGen `source` as the component's container sees it.

    ImdbExampleGen reads the archive with ordinary file calls, so a `gs://bucket/key` becomes `<gcs_mount>/bucket/key`,
    where Vertex AI Pipelines mounts buckets with Cloud Storage FUSE; an empty `gcs_mount` passes the URI unchanged.
    """
    if gcs_mount and source.startswith("gs://"):
        return f"{gcs_mount.rstrip('/')}/{source.removeprefix('gs://')}"
    return source


def explicit_encoder(
    path: str, *, vocab_file: str | None, do_lower_case: bool, image_project_root: str
) -> ResolvedEncoder:
    """The encoder as given, without loading it: the facts the local runner reads from the SavedModel come as flags.

    Relative paths are taken inside the image's copy of the repository (an encoder converted into data/encoders/ and
    built into the image). The vocabulary defaults to `<path>/assets/vocab.txt`, where TF Hub BERT SavedModels and
    our converter keep it; a TF Hub URL has no such file path, so it needs `vocab_file`.
    """
    if not path:
        raise ValueError("The encoder is required: --encoder-path (a gs:// SavedModel, a TF Hub URL or an image path)")
    path = _in_image(path, image_project_root)
    if vocab_file:
        vocab_file = _in_image(vocab_file, image_project_root)
    elif path.startswith(("http://", "https://")):
        raise ValueError(f"--encoder-vocab-file is required for the TF Hub URL {path!r} (e.g. gs://.../vocab.txt)")
    else:
        vocab_file = f"{path.rstrip('/')}/assets/vocab.txt"
    # hidden_size only feeds local log lines; nothing in the compiled pipeline reads it, so it is not asked for.
    return ResolvedEncoder(path=path, vocab_file=vocab_file, do_lower_case=do_lower_case, hidden_size=0, handle=path)


def check_config(config: PipelineConfig) -> None:
    """Refuse settings that would only fail inside a cluster step, after the image was pulled and data was read."""
    problems = []
    if not config.pipeline_root or not _is_location(config.pipeline_root):
        problems.append(
            f"--pipeline-root must be a bucket URI such as gs://BUCKET/pipelines, got {config.pipeline_root!r}"
        )
    if not _is_location(config.serving_model_dir):
        problems.append(
            f"--serving-model-dir must be a bucket URI such as gs://BUCKET/serving_model (the model servers' "
            f"model base path), got {config.serving_model_dir!r}"
        )
    if not config.imdb_source:
        problems.append("--imdb-source is required: gs://BUCKET/.../aclImdb_v1.tar.gz, a path in the image, or tfds")
    elif config.imdb_source != "tfds" and not _is_location(config.imdb_source):
        problems.append(
            f"--imdb-source must be a URI, an absolute path in the container or tfds: {config.imdb_source!r}"
        )
    if config.infra_validator == "docker":
        problems.append(
            "--infra-validator docker needs a Docker daemon, which cluster steps do not have: use model_server "
            "(this project's server, started inside the InfraValidator step's own container) or off"
        )
    if config.hyperparameters_uri and not _is_location(config.hyperparameters_uri):
        problems.append(f"--hyperparameters-uri must be a URI or an absolute path: {config.hyperparameters_uri!r}")
    if problems:
        raise ValueError("Cannot compile for Kubeflow:\n  - " + "\n  - ".join(problems))


@contextlib.contextmanager
def _user_modules_unpackaged() -> Iterator[None]:
    """Keep a `--trainer-module-file` as a path instead of TFX building it into a wheel under the pipeline root.

    Why: packaging writes the wheel to the (bucket) pipeline root while compiling, which needs credentials and a
    network, and such a module imports `pipeline_modules`, which the image has installed anyway.
    """
    previous = os.environ.get(_NO_PACKAGING_ENV)
    os.environ[_NO_PACKAGING_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_NO_PACKAGING_ENV, None)
        else:
            os.environ[_NO_PACKAGING_ENV] = previous


def paths_in_image(
    config: PipelineConfig, image_project_root: str, project_root: Path = PROJECT_ROOT
) -> PipelineConfig:
    """The configuration with the files it names (the curated schema, your own trainer module) as the image's copies.

    A relative path, or one inside this checkout, means that file of the image's copy of the repository; URIs and
    other absolute paths (a mounted volume) stay as they are. Module functions need nothing of the kind: they are
    named by import path.
    """
    from pipeline_modules.pipeline import SCHEMA_FILE

    local_root = str(project_root).rstrip("/")

    def in_image(value: str) -> str:
        resolved = config.resolved_uri(value)
        if resolved == local_root or resolved.startswith(local_root + "/"):
            return image_project_root.rstrip("/") + resolved[len(local_root) :]
        return resolved

    trainer_module_file = in_image(config.trainer_module_file) if config.trainer_module_file else ""
    return dataclasses.replace(
        config, schema_file=in_image(config.schema_file or SCHEMA_FILE), trainer_module_file=trainer_module_file
    )


def build_pipeline(config: PipelineConfig, settings: KubeflowSettings) -> Any:
    """The project's pipeline definition with this runner's environment: container paths, no local look-ups."""
    try:  # before building anything: TFX's compiler needs kfp-pipeline-spec, which the base install lacks
        from tfx.orchestration.kubeflow.v2 import pipeline_builder  # noqa: F401
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"{error}: compiling for Kubeflow needs kfp and kfp-pipeline-spec, which both stacks' locks hold: "
            "`make venv` (or `python -m stacks install`) installs them"
        ) from error

    from pipeline_modules.pipeline import create_pipeline

    check_config(config)
    if config.encoder_num_layers:
        logger.warning(
            "encoder_num_layers=%d is ignored: the Kubeflow runner uses --encoder-path as given (cut layers when "
            "converting: python -m pipeline_modules.encoder.hf_to_tfhub --num-layers N ...)",
            config.encoder_num_layers,
        )
    source = container_data_path(config.imdb_source, settings.gcs_mount)
    config = paths_in_image(config, settings.image_project_root)
    logger.info("In the image: schema_file = %s", config.schema_file)
    if config.trainer_module_file:
        logger.info("In the image: trainer_module_file = %s", config.trainer_module_file)
    with _user_modules_unpackaged():
        pipeline = create_pipeline(
            config,
            imdb_source=source,
            encoder=settings.encoder,
            # Data in a bucket cannot be inspected offline: with --enable-cache true the cache is keyed on the path,
            # so upload changed data under a new name.
            source_fingerprint=f"path:{source}",
        )
    if settings.training_resources.is_set():
        resources = _resource_spec(settings.training_resources)
        for component in pipeline.components:
            if component.id in ("Tuner", "Trainer"):
                component.with_platform_config(resources)
    return pipeline


def _resource_spec(request: ResourceRequest) -> Any:
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=request.cpu, memory_limit=request.memory_gb
    )
    if request.accelerator:
        spec.accelerator.type = request.accelerator
        spec.accelerator.count = request.accelerator_count or 1
    return spec


def container_command() -> list[str]:
    """TFX's executor entry point, choosing Keras 2 explicitly, whatever the image's ENV.

    `env` is used because a pipeline spec's container command is not run by a shell; Keras 2 must be chosen before
    TFX's executor imports TensorFlow (stacks.compat). `pipeline_modules` is installed in the image.
    """
    return ["env", *(f"{key}={value}" for key, value in LEGACY_KERAS_ENV.items()), "python", "-m", EXECUTOR_MODULE]


def compile_pipeline(config: PipelineConfig, settings: KubeflowSettings, output: Path) -> dict[str, Any]:
    """Write the compiled pipeline to `output`; return the pipeline job as a dict.

    A .json `output` holds the PipelineJob that Vertex AI submits; .yaml/.yml holds only its PipelineSpec, the
    package format a Kubeflow Pipelines client uploads.
    """
    from tfx import v1 as tfx

    if not settings.image:
        raise ValueError("--image is required: the container image (with this repository) that every step runs in")
    pipeline = build_pipeline(config, settings)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=settings.image, default_commands=container_command()
        ),
        output_dir=str(output.parent),
        output_filename=output.name,
    )
    return runner.run(pipeline, write_out=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_modules.kubeflow_v2_runner",
        description="Compile the BERT IMDB pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines.",
        epilog=f"Presets: {describe_presets()}",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="(default demo)")
    parser.add_argument(
        "--image", required=True, help="container image with the TFX stack, this package and this repository"
    )
    parser.add_argument(
        "--image-project-root",
        default=DEFAULT_IMAGE_PROJECT_ROOT,
        help=f"where the image holds this repository (default {DEFAULT_IMAGE_PROJECT_ROOT})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="file to write: .json (Vertex AI PipelineJob) or .yaml (Kubeflow Pipelines package); "
        "default <pipeline-name>-<preset>.json",
    )
    parser.add_argument(
        "--gcs-mount",
        default=DEFAULT_GCS_MOUNT,
        help="where buckets are mounted in the containers, for reading a gs:// --imdb-source with file calls "
        f"(default {DEFAULT_GCS_MOUNT}, Vertex AI's Cloud Storage FUSE mount; '' keeps gs:// as given)",
    )
    encoder = parser.add_argument_group(
        "encoder (not loaded when compiling; --encoder-handle is a synonym of the path)"
    )
    encoder.add_argument(
        "--encoder-path", default=None, help="TF Hub-format BERT SavedModel: gs://..., image path, URL"
    )
    encoder.add_argument("--encoder-vocab-file", default=None, help="(default <encoder-path>/assets/vocab.txt)")
    encoder.add_argument(
        "--encoder-do-lower-case", type=parse_bool, required=True, metavar="BOOL", help="the vocabulary's casing"
    )
    resources = parser.add_argument_group("Tuner and Trainer resources (default: the platform's)")
    resources.add_argument("--training-cpu", type=float, default=0.0, help="vCPU limit")
    resources.add_argument("--training-memory-gb", type=float, default=0.0, help="memory limit in GB")
    resources.add_argument("--training-accelerator", default="", help="accelerator type, e.g. NVIDIA_TESLA_T4")
    resources.add_argument("--training-accelerator-count", type=int, default=0, help="(default 1 with a type)")
    add_config_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # This runner's own lines (what moved into the image, ignored settings); TFX and Beam only from warnings up.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    try:
        config = config_for(args.preset, **overrides_from_args(args))
        settings = KubeflowSettings(
            image=args.image,
            image_project_root=args.image_project_root,
            gcs_mount=args.gcs_mount,
            encoder=explicit_encoder(
                args.encoder_path or config.encoder_handle,
                vocab_file=args.encoder_vocab_file,
                do_lower_case=args.encoder_do_lower_case,
                image_project_root=args.image_project_root,
            ),
            training_resources=ResourceRequest(
                cpu=args.training_cpu,
                memory_gb=args.training_memory_gb,
                accelerator=args.training_accelerator,
                accelerator_count=args.training_accelerator_count,
            ),
        )
        output = (args.output or Path(f"{config.pipeline_name}-{config.preset}.json")).absolute()
        compile_pipeline(config, settings, output)
    except (ValueError, ModuleNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {output} ({config.pipeline_name}, preset {config.preset}, image {settings.image})")
    return 0


__all__ = [
    "KubeflowSettings",
    "ResourceRequest",
    "build_pipeline",
    "check_config",
    "compile_pipeline",
    "container_command",
    "container_data_path",
    "explicit_encoder",
    "main",
    "paths_in_image",
]


if __name__ == "__main__":
    sys.exit(main())
