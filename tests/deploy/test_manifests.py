"""Static checks of the serving deployment (deploy/docker, deploy/kubernetes): no cluster and no Docker engine.

* Every Kubernetes manifest validates against the Kubernetes JSON schemas (strict: unknown fields fail) of the
  oldest version we support and of the newest one kubernetes-validate bundles, offline.
* The pieces agree with each other and with the server: the container's command line (image entrypoint + the
  Deployment's args) is parsed by model_server's own argument parser, the ConfigMap's batching text by its own
  batching-parameters parser, and the probes, Service, HPA, PDB, volumes and Dockerfile are cross-checked.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
import yaml

from model_server.config import ServerOptions, build_arg_parser, parse_args
from model_server.model_config import parse_batching_parameters_text

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "kubernetes"
DOCKER_DIR = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
ENTRYPOINT_SCRIPT = DOCKER_DIR / "entrypoint.sh"
SERVING_REQUIREMENTS = DOCKER_DIR / "requirements-serving.txt"
PYTHON311_LOCK = ROOT / "stacks" / "locks" / "tfx116-py311.txt"  # the stack of the image's python:3.11

OLDEST_KUBERNETES = "1.29"  # the oldest Kubernetes version the manifests are checked against
DEPLOYMENT_NAME = "bert-imdb-model-server"
MODEL_NAME = "bert_imdb"
KUSTOMIZATION = "kustomization.yaml"
MANIFEST_FILES = sorted(p.name for p in K8S_DIR.glob("*.yaml") if p.name != KUSTOMIZATION)


# --- loading ------------------------------------------------------------------------------------------------------


def load_docs(name: str) -> list[dict]:
    with open(K8S_DIR / name, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def resources() -> list[dict]:
    return [doc for name in MANIFEST_FILES for doc in load_docs(name)]


def one(kind: str) -> dict:
    found = [doc for doc in resources() if doc["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def pod_spec() -> dict:
    return one("Deployment")["spec"]["template"]["spec"]


def server_container() -> dict:
    containers = pod_spec()["containers"]
    assert len(containers) == 1, "the pod runs the model server only"
    return containers[0]


def container_port(name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in server_container()["ports"]}
    assert name in ports, f"the container has no port named {name!r} (has {sorted(ports)})"
    return ports[name]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comment lines dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def dockerfile_values(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile_instructions() if kw == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in dockerfile_values("ENV"):
        for token in shlex.split(rest):
            key, sep, value = token.partition("=")
            assert sep, f"use ENV KEY=value, not the legacy form: {rest!r}"
            env[key] = value
    return env


def entrypoint_flags(env: dict[str, str]) -> list[str]:
    """The flags entrypoint.sh puts before "$@", with ${VAR}s expanded from ``env`` as the shell would."""
    text = ENTRYPOINT_SCRIPT.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines() if line.strip().startswith("exec ")]
    assert len(lines) == 1, "entrypoint.sh must end in exactly one `exec python -m model_server ...` line"
    tokens = shlex.split(lines[0])
    assert tokens[:4] == ["exec", "python", "-m", "model_server"], tokens[:4]
    assert tokens[-1] == "$@", 'the container\'s arguments must be passed on with "$@", last'
    return [string.Template(t).substitute(env) for t in tokens[4:-1]]


def container_env() -> dict[str, str]:
    """The server's environment in the pod: the image's ENV, overridden by the Deployment's env."""
    env = dockerfile_env()
    env.update({e["name"]: e["value"] for e in server_container().get("env", [])})
    return env


def container_argv() -> list[str]:
    """The exact command line the pod runs after ``python -m model_server``."""
    return entrypoint_flags(container_env()) + list(server_container()["args"])


def flag_value(argv: list[str], flag: str) -> str:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{flag}=")]
    assert values, f"--{flag} is not set"
    return values[-1]  # argparse: the last occurrence wins


def mount_for(path: str) -> dict:
    """The container's volumeMount that holds ``path`` (the deepest one)."""
    mounts = [
        m
        for m in server_container()["volumeMounts"]
        if PurePosixPath(path).is_relative_to(PurePosixPath(m["mountPath"]))
    ]
    assert mounts, f"{path} is on no volume"
    return max(mounts, key=lambda m: len(m["mountPath"]))


def volume(name: str) -> dict:
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert name in volumes, f"no volume named {name!r}"
    return volumes[name]


@pytest.fixture(scope="module")
def server_options(tmp_path_factory: pytest.TempPathFactory) -> ServerOptions:
    """The pod's command line through the server's real parser, with the ConfigMap's batching file in place of the
    mounted one (the only file the parser reads)."""
    argv = container_argv()
    batching_path = flag_value(argv, "batching_parameters_file")
    local = tmp_path_factory.mktemp("config") / "batching.config"
    local.write_text(configmap_file(batching_path), encoding="utf-8")
    return parse_args(
        [a.replace(batching_path, str(local)) if a.startswith("--batching_parameters_file=") else a for a in argv]
    )


def configmap_file(path: str) -> str:
    """The text a pod sees at ``path`` when that file comes from a ConfigMap volume."""
    mount = mount_for(path)
    source = volume(mount["name"])
    assert "configMap" in source, f"{path} is expected on a ConfigMap volume"
    configmap = one("ConfigMap")
    assert source["configMap"]["name"] == configmap["metadata"]["name"]
    key = str(PurePosixPath(path).relative_to(mount["mountPath"]))
    assert key in configmap["data"], f"ConfigMap {configmap['metadata']['name']} has no key {key!r}"
    return configmap["data"][key]


def kubectl_kustomize(directory: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: kustomize rendering not checked")
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


# --- schema validation --------------------------------------------------------------------------------------------


def _kubernetes_versions() -> list[str]:
    try:
        from kubernetes_validate.utils import latest_version, major_minor
    except ImportError:  # validate() skips with the reason
        return [OLDEST_KUBERNETES]
    return [OLDEST_KUBERNETES, major_minor(latest_version())]


def validate(doc: dict, version: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (stacks/locks/common.in) bundles the schemas"
    )
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(
            f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {version} at {where}: {exc.message}"
        )
    except kubernetes_validate.SchemaNotFoundError as exc:  # an unknown kind or apiVersion must not pass silently
        pytest.fail(exc.message)


@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_manifest_parses_as_kubernetes_objects(name: str) -> None:
    docs = load_docs(name)
    assert docs, f"{name} holds no object"
    for doc in docs:
        assert isinstance(doc, dict)
        assert {"apiVersion", "kind", "metadata"} <= doc.keys()
        assert doc["metadata"].get("name"), f"{name}: an object without a name"
        assert "namespace" not in doc["metadata"], "the namespace is chosen at apply time (-n), not in the files"


@pytest.mark.parametrize("version", _kubernetes_versions())
@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_manifest_validates_against_kubernetes_schema(name: str, version: str) -> None:
    for doc in load_docs(name):
        validate(doc, version)


def test_schema_validation_is_strict() -> None:
    """The validator really checks: a misspelt field and a wrongly typed port are rejected."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")

    deployment = one("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, OLDEST_KUBERNETES, strict=True)
    deployment = one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8500"
    with pytest.raises(kubernetes_validate.ValidationError, match="integer"):
        kubernetes_validate.validate(deployment, OLDEST_KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / KUSTOMIZATION).read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == MANIFEST_FILES
    images = {i["name"]: i for i in kustomization["images"]}
    assert server_container()["image"].rsplit(":", 1)[0] in images, "the images: override must match the Deployment"


def test_kustomize_renders_valid_objects() -> None:
    rendered = kubectl_kustomize(K8S_DIR)
    assert sorted(d["kind"] for d in rendered) == sorted(d["kind"] for d in resources())
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "bert-imdb"
        for version in _kubernetes_versions():
            validate(doc, version)


def test_kustomize_image_override(tmp_path: Path) -> None:
    """What the README tells users to do: an overlay's images: entry replaces the placeholder image."""
    (tmp_path / KUSTOMIZATION).write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S_DIR, tmp_path)],  # kustomize accepts only relative paths
                "images": [
                    {
                        "name": "REGISTRY/bert-imdb-model-server",
                        "newName": "europe-docker.pkg.dev/my-project/serving/bert-imdb-model-server",
                        "newTag": "1.0.0",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    deployment = next(d for d in kubectl_kustomize(tmp_path) if d["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "europe-docker.pkg.dev/my-project/serving/bert-imdb-model-server:1.0.0"


# --- the server's command line and configuration ------------------------------------------------------------------


def test_container_flags_are_known_to_the_server() -> None:
    """Every flag of the pod's command line exists in model_server's parser (a renamed flag fails here)."""
    known, unknown = build_arg_parser().parse_known_args(container_argv())
    assert not unknown, f"flags that python -m model_server does not accept: {unknown}"
    for arg in server_container()["args"]:
        assert arg.startswith("--"), f"{arg!r}: give every argument as --flag or --flag=value"


def test_server_options(server_options: ServerOptions) -> None:
    o = server_options
    assert o.host == "0.0.0.0", "in a pod the server must listen beyond loopback"
    assert [(m.name, m.base_path) for m in o.models] == [(MODEL_NAME, "/models/bert_imdb")]
    assert o.grpc_port == container_port("grpc") == 8500
    assert o.rest_api_port == container_port("http") == 8501
    assert o.enable_batching
    assert o.batching.max_batch_size == 32


def test_model_base_path_is_the_read_only_model_volume(server_options: ServerOptions) -> None:
    base_path = server_options.models[0].base_path
    mount = mount_for(base_path)
    assert mount.get("readOnly") is True, "the server only reads the models"
    claim = volume(mount["name"]).get("persistentVolumeClaim")
    assert claim is not None, "the model base path must be on the PersistentVolumeClaim"
    assert claim["claimName"] == one("PersistentVolumeClaim")["metadata"]["name"]
    assert claim.get("readOnly") is True
    pvc = one("PersistentVolumeClaim")
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "replicas on several nodes and the Pusher share it"


def test_configmap_batching_parameters_parse_with_the_server_parser() -> None:
    text = configmap_file(flag_value(container_argv(), "batching_parameters_file"))
    batching = parse_batching_parameters_text(text, "configmap.yaml")
    assert batching.max_batch_size == 32
    assert batching.batch_timeout_micros > 0
    assert batching.max_enqueued_batches > 0
    # Explicit, not 0 ("one per core" counts the node's cores), and no more threads than the pod has CPUs.
    cpus = float(server_container()["resources"]["limits"]["cpu"])
    assert 0 < batching.num_batch_threads <= cpus


def test_thread_pools_are_sized_for_the_cpu_limit(server_options: ServerOptions) -> None:
    cpus = float(server_container()["resources"]["limits"]["cpu"])
    env = container_env()
    assert 0 < server_options.num_request_threads <= cpus
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        assert 0 < int(env[name]) <= cpus, name


# --- probes, lifecycle, security ----------------------------------------------------------------------------------


def test_probes_use_the_server_endpoints_on_the_rest_port(server_options: ServerOptions) -> None:
    c = server_container()
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] == "http", f"{probe} must use the named REST port"
    assert container_port("http") == server_options.rest_api_port
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "generous start-up budget"


def test_termination_grace_exceeds_the_drain(server_options: ServerOptions) -> None:
    """The kubelet's SIGKILL must not cut the server's drain: preStop + --shutdown_grace_seconds + exit margin."""
    spec = pod_spec()
    command = server_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    exit_margin = 8.0  # measured locally: the process exits 1-8 s after its drain ends (TensorFlow's teardown)
    assert spec["terminationGracePeriodSeconds"] > pre_stop + server_options.shutdown_grace_seconds + exit_margin


def test_prometheus_annotations_point_at_metrics(server_options: ServerOptions) -> None:
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == server_options.rest_api_port
    assert annotations["prometheus.io/path"] == "/metrics"


def test_pod_runs_as_the_image_user_read_only() -> None:
    spec, c = pod_spec(), server_container()
    user = dockerfile_values("USER")[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "the image's USER must be a numeric non-root UID"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == int(user)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert mount_for(dockerfile_env()["HOME"])["name"] == "tmp", "HOME must be writable"
    assert "emptyDir" in volume("tmp")


def test_resources_are_requested_and_limited() -> None:
    resources_ = server_container()["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources_[kind].keys(), kind


# --- Service, HPA, PDB --------------------------------------------------------------------------------------------


def test_deployment_selector_matches_its_pods() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_service_targets_the_pods_and_ports() -> None:
    service = one("Service")
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"grpc", "http"}
    for name, port in ports.items():
        assert port["targetPort"] == name, "target the container's named port"
        assert port["port"] == container_port(name)
    assert ports["grpc"]["appProtocol"] == "grpc"


def test_hpa_scales_the_deployment_on_cpu() -> None:
    hpa, deployment = one("HorizontalPodAutoscaler"), one("Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", DEPLOYMENT_NAME)
    assert deployment["metadata"]["name"] == DEPLOYMENT_NAME
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert "cpu" in server_container()["resources"]["requests"], "CPU utilisation is relative to the request"
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_pdb_keeps_a_replica_serving() -> None:
    pdb, hpa = one("PodDisruptionBudget"), one("HorizontalPodAutoscaler")
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


# --- the container image ------------------------------------------------------------------------------------------


def test_dockerfile_exposes_the_service_ports() -> None:
    exposed = sorted(int(p.split("/")[0]) for rest in dockerfile_values("EXPOSE") for p in rest.split())
    assert exposed == sorted(p["port"] for p in one("Service")["spec"]["ports"])


def test_dockerfile_entrypoint_and_signals() -> None:
    [base] = dockerfile_values("FROM")
    assert base == "${PYTHON_IMAGE}"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text(encoding="utf-8")
    assert dockerfile_values("STOPSIGNAL") == ["SIGTERM"]
    [entrypoint] = dockerfile_values("ENTRYPOINT")
    script = yaml.safe_load(entrypoint)  # exec form is a JSON array
    assert script == ["/usr/local/bin/model-server-entrypoint"]
    assert f"deploy/docker/entrypoint.sh {script[0]}" in dockerfile_values("COPY")
    assert ENTRYPOINT_SCRIPT.stat().st_mode & 0o111, "entrypoint.sh must be executable"
    [healthcheck] = dockerfile_values("HEALTHCHECK")
    assert "http://127.0.0.1:8501/healthz" in healthcheck


def test_image_entrypoint_alone_is_a_valid_command_line() -> None:
    """`docker run IMAGE` with no arguments serves $MODEL_BASE_PATH/$MODEL_NAME on all interfaces."""
    env = dockerfile_env()
    options = parse_args(entrypoint_flags(env))
    assert options.host == "0.0.0.0"
    assert (options.grpc_port, options.rest_api_port) == (8500, 8501)
    assert [(m.name, m.base_path) for m in options.models] == [(MODEL_NAME, f"/models/{MODEL_NAME}")]


def test_docker_context_filter_admits_what_the_dockerfile_copies() -> None:
    ignore = (DOCKER_DIR / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "exclude everything by default (.venv/, data/, serving_model/ are large)"
    admitted = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for rest in dockerfile_values("COPY"):
        *sources, _ = shlex.split(rest)
        for source in sources:
            if not source.startswith("--"):
                assert source.rstrip("/") in admitted, f"COPY {source} is excluded from the build context"
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"


# --- the image's Python dependencies ------------------------------------------------------------------------------


def serving_requirements() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in SERVING_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"pin every requirement exactly: {line!r}"
            pins[canonical(name)] = version.strip()
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_serving_pins_agree_with_the_project_constraints() -> None:
    """The image (python:3.11) runs the versions of the Python 3.11 stack's lock, which CI tests."""
    pins = serving_requirements()
    constraints = {}
    for line in PYTHON311_LOCK.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            constraints[canonical(name)] = version.strip()
    for name, version in constraints.items():
        if name in pins:
            assert pins[name] == version, f"{name}: {pins[name]} in requirements-serving.txt, {version} in the lock"
    assert not pins.keys() - constraints.keys(), "every pin of the image is a version the lock tests"
    # The TFX stack stays out of the image.
    assert not {"tfx", "apache-beam", "tensorflow-transform", "tensorflow-data-validation"} & pins.keys()


# What the image installs from the repository (Dockerfile: COPY ... /tmp/src, then pip install --no-deps).
IMAGE_PACKAGES = ("model_server", "stacks")


def _imports() -> Iterator[str]:
    """Top-level module names imported anywhere in model_server/."""
    for path in sorted((ROOT / "model_server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                yield name.split(".")[0]


def _third_party_imports() -> Iterator[str]:
    for top in _imports():
        if top not in sys.stdlib_module_names and top not in IMAGE_PACKAGES:
            yield top


def test_model_server_imports_nothing_of_the_pipeline_or_the_tests() -> None:
    """One direction only: the pipeline uses the server, never the other way round; the image has neither."""
    assert not {"pipeline_modules", "tests", "benchmarks"} & set(_imports())


def test_image_installs_the_serving_part_as_a_package() -> None:
    """pip install --no-deps of the project after the pinned requirements, no PYTHONPATH, no tests in the image."""
    runs = dockerfile_values("RUN")
    assert any("pip install --only-binary=:all: -r /tmp/requirements-serving.txt" in r for r in runs)
    [install] = [r for r in runs if "/tmp/src" in r and "pip install" in r]
    assert "--no-deps" in install
    assert "PYTHONPATH" not in dockerfile_env(), "the package is installed: no PYTHONPATH"
    sources = {
        source.rstrip("/")
        for rest in dockerfile_values("COPY")
        for source in shlex.split(rest)[:-1]
        if not source.startswith("--")
    }
    top_dirs = {PurePosixPath(source).parts[0] for source in sources}
    assert top_dirs <= {"pyproject.toml", "README.md", "deploy", *IMAGE_PACKAGES}, top_dirs
    assert "tests" not in top_dirs and "pipeline_modules" not in top_dirs
    compat = (ROOT / "stacks" / "compat.py").read_text(encoding="utf-8")
    assert {"stacks/__init__.py", "stacks/compat.py"} <= sources, "model_server imports stacks.compat"
    assert "import tensorflow" not in compat and "pipeline_modules" not in compat


def test_serving_requirements_cover_model_server_imports() -> None:
    """A new third-party import in model_server/ must come with its package in the image."""
    from importlib.metadata import packages_distributions

    pins = serving_requirements()
    providers = packages_distributions()
    for module in sorted(set(_third_party_imports())):
        dists = {canonical(d) for d in providers.get(module, [])}
        assert dists & pins.keys(), f"model_server imports {module!r} (from {sorted(dists)}), not in the image"
    # Not imported by model_server itself, but needed (see the comment in requirements-serving.txt).
    assert "tf-keras" in pins and "tensorflow-text" in pins
