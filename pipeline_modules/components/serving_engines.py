"""Which engine answered each signature in InfraValidator's server, and what that means for the checks and the blessing.

Why: what is validated is what is served. A model version may ask (in its ONNX manifest, `model_server.onnx_manifest`)
for ONNX Runtime on some signatures; the server decides at load and logs one engine line per signature. The
InfraValidator reads those lines rather than the manifest, compares the served answers with the SavedModel within the
tolerance of the engine that actually served them (the manifest's for ONNX Runtime, the component's for TensorFlow),
and records engine, precision, the measured difference and the exporter's accuracy figures in its report and in the
InfraBlessing, where `run_summary` and Pusher's readers find them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from model_server.onnx_manifest import ManifestError, OnnxSignature, engines_in_log, read_onnx_manifest

ENGINE_KEY = "serving_engine"  # InfraBlessing: "onnxruntime fp32" / "onnxruntime int8" / "tensorflow" (serving_default)
ENGINE_DETAIL_KEY = "serving_engine_detail"  # the server's words (why TensorFlow, or what ONNX Runtime checked)
# Served probability vs the in-process SavedModel on the eval reviews, as a string ("8.9e-08"): ML Metadata's SQLite
# store keeps doubles to 6 decimals, which would record an fp32 engine's difference as 0.
MAX_ABS_DIFF_KEY = "serving_max_abs_diff"
ENGINES_KEY = "serving_engines"  # JSON: every signature's record, as in the report's "engines"
ACCURACY_KEYS = {"fp32": "engine_accuracy_fp32", "int8": "engine_accuracy_int8"}  # the exporter's, for int8
NO_ENGINE_LINE = "the server logged no engine line for it (a server that does not read ONNX manifests)"


def read_manifest(version_dir: str) -> tuple[dict[str, OnnxSignature], str]:
    """The version's ONNX manifest ({} without one) and, if it cannot be read, why (the server then serves TF)."""
    try:
        return read_onnx_manifest(version_dir), ""
    except ManifestError as error:
        return {}, str(error)


def served_engines(
    manifest: Mapping[str, OnnxSignature], log_text: str, model_name: str, version: int, manifest_error: str = ""
) -> dict[str, dict[str, Any]]:
    """Per signature the manifest names or the server logged: the engine that serves it, as the server said.

    An ONNX Runtime signature carries the manifest's `tolerance` (what its answers are checked with), precision,
    exporter figures and, below fp32, the accuracy the exporter measured; a signature the manifest asked for that
    runs on TensorFlow says why (the server's detail). The newest line per signature wins (a reload logs again).
    """
    lines = {
        line["signature"]: line
        for line in engines_in_log(log_text)
        if line["model"] == model_name and line["version"] == str(version)
    }
    engines: dict[str, dict[str, Any]] = {}
    for name in sorted(set(manifest) | set(lines)):
        line, spec = lines.get(name), manifest.get(name)
        entry: dict[str, Any] = (
            {"engine": line["engine"], "precision": line["precision"], "detail": line["detail"]}
            if line is not None
            else {"engine": "tensorflow", "precision": "", "detail": NO_ENGINE_LINE}
        )
        if spec is not None:
            entry["manifest"] = {"precision": spec.precision, "tolerance": spec.tolerance, **dict(spec.measured)}
            if spec.accuracy:
                entry["accuracy"] = dict(spec.accuracy)
            if entry["engine"] == "onnxruntime":
                entry["tolerance"] = spec.tolerance
        engines[name] = entry
    if manifest_error:
        engines.setdefault("_manifest", {"engine": "tensorflow", "precision": "", "detail": manifest_error})
    return engines


def check_tolerance(engines: Mapping[str, Mapping[str, Any]], signature: str, default: float) -> float:
    """The tolerance `signature`'s served answers are held to: its manifest's on ONNX Runtime, else `default`."""
    tolerance = engines.get(signature, {}).get("tolerance")
    return float(tolerance) if tolerance is not None else default


def runs_on_tensorflow(engines: Mapping[str, Mapping[str, Any]], signature: str) -> bool:
    return engines.get(signature, {}).get("engine", "tensorflow") == "tensorflow"


def describe(entry: Mapping[str, Any]) -> str:
    """ "onnxruntime int8", "onnxruntime fp32" or "tensorflow"."""
    return " ".join(part for part in (entry.get("engine", "tensorflow"), entry.get("precision", "")) if part)


def summary(engines: Mapping[str, Mapping[str, Any]], signature: str) -> str:
    """One line for the blessing's reason: what served `signature`, how close to the SavedModel, and why not ONNX."""
    entry = engines.get(signature, {})
    text = f"{signature} on {describe(entry)}"
    if "max_abs_diff" in entry:
        text += f" (max |diff| {entry['max_abs_diff']:.1e} vs the SavedModel, tolerance {entry['checked_tolerance']:g})"
    asked = entry.get("manifest", {}).get("precision")
    if asked and entry.get("engine") != "onnxruntime":
        text += f"; the manifest asked for onnxruntime {asked}: {entry.get('detail') or 'no reason logged'}"
    return text


def blessing_properties(engines: Mapping[str, Mapping[str, Any]], signature: str) -> dict[str, str | float]:
    """InfraBlessing custom properties: `signature`'s engine, detail, measured difference, accuracy; all as JSON."""
    entry = engines.get(signature, {"engine": "tensorflow", "precision": "", "detail": ""})
    properties: dict[str, str | float] = {
        ENGINE_KEY: describe(entry),
        ENGINE_DETAIL_KEY: str(entry.get("detail", ""))[:2000],
        ENGINES_KEY: json.dumps(engines, sort_keys=True)[:20000],
    }
    if "max_abs_diff" in entry:
        properties[MAX_ABS_DIFF_KEY] = f"{float(entry['max_abs_diff']):.3g}"
    if entry.get("engine") == "onnxruntime":
        for precision, key in ACCURACY_KEYS.items():
            if precision in entry.get("accuracy", {}):
                properties[key] = float(entry["accuracy"][precision])
    return properties


__all__ = [
    "ENGINES_KEY",
    "ENGINE_DETAIL_KEY",
    "ENGINE_KEY",
    "MAX_ABS_DIFF_KEY",
    "blessing_properties",
    "check_tolerance",
    "describe",
    "read_manifest",
    "runs_on_tensorflow",
    "served_engines",
    "summary",
]
