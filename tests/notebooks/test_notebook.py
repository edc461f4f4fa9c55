"""Executes notebooks/bert_imdb_tfx.ipynb headless on the `smoke` preset and checks what its cells show.

Parameters are injected papermill-style: a cell tagged `injected-parameters` right after the cell tagged
`parameters`. The kernel is a kernelspec written into a temporary directory that points at this interpreter, so the
notebook runs with this virtual environment whatever kernels the machine has registered. The injected cell also
blocks connections to anything but the loopback interface, so a notebook that reached for the network would fail.
The executed notebook is saved next to the test's temporary files (its path is printed) for inspection.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = PROJECT_ROOT / "notebooks" / "bert_imdb_tfx.ipynb"
KERNEL_NAME = "bert-imdb-tfx-test"
CELL_TIMEOUT_S = 1800  # the Trainer cell is the slowest: about a minute on smoke, much more on a loaded machine
MODEL_NAME = "bert_imdb"

# Runs in the kernel right after the parameters cell. Loopback connections stay allowed (the kernel's own channels,
# local servers); any other address raises, and is recorded so that a swallowed error still fails the test.
NETWORK_GUARD = """
import socket as _socket

NETWORK_ATTEMPTS = []
_original_connect, _original_connect_ex = _socket.socket.connect, _socket.socket.connect_ex


def _is_loopback(address):
    if not isinstance(address, tuple):
        return True  # AF_UNIX and friends
    host = str(address[0])
    return host in ("localhost", "::1") or host.startswith("127.") or host.startswith("::ffff:127.")


def _guarded(original):
    def connect(self, address):
        if not _is_loopback(address):
            NETWORK_ATTEMPTS.append(repr(address))
            raise OSError(f"network access is disabled in this test (tried {address!r})")
        return original(self, address)

    return connect


_socket.socket.connect = _guarded(_original_connect)
_socket.socket.connect_ex = _guarded(_original_connect_ex)
"""

REPORT_CELL = """
import json as _json
import sys as _sys

print("NOTEBOOK-TEST-REPORT " + _json.dumps({"network_attempts": NETWORK_ATTEMPTS, "prefix": _sys.prefix}))
"""


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _tagged(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    found = [cell for cell in nb.cells if tag in _tags(cell)]
    assert len(found) == 1, f"expected exactly one cell tagged {tag!r}, found {len(found)}"
    return found[0]


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed as text (stdout, stderr, text/plain)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def _mime_types(cell: nbformat.NotebookNode) -> set[str]:
    return {
        mime
        for output in cell.get("outputs", [])
        if output.output_type in ("display_data", "execute_result")
        for mime in output.data
    }


def _errors(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode, nbformat.NotebookNode]]:
    return [
        (index, cell, output)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _install_kernelspec(prefix: Path) -> None:
    """A kernelspec for this interpreter (the test's virtual environment) under `prefix`/share/jupyter."""
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="bert-imdb-tfx test kernel", prefix=str(prefix))
    spec_file = prefix / "share" / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
    argv = json.loads(spec_file.read_text())["argv"]
    assert argv[0] == sys.executable, argv


def _inject(nb: nbformat.NotebookNode, parameters: dict[str, object]) -> None:
    index = next(i for i, cell in enumerate(nb.cells) if "parameters" in _tags(cell))
    lines = ["# Parameters injected by tests/notebooks/test_notebook.py"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    injected = nbformat.v4.new_code_cell("\n".join(lines) + "\n" + NETWORK_GUARD)
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    report = nbformat.v4.new_code_cell(REPORT_CELL.strip())
    report.metadata["tags"] = ["test-report"]
    nb.cells.append(report)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, smoke_encoder) -> dict[str, object]:
    from nbclient import NotebookClient

    work = tmp_path_factory.mktemp("notebook")
    serving_dir = work / "serving"
    parameters = {
        "PRESET": "smoke",
        "IMDB_ARCHIVE": None,
        "PIPELINE_ROOT": str(work / "pipeline"),
        "SERVING_MODEL_DIR": str(serving_dir),
        # Reuse the session's converted smoke encoder (tests/conftest.py) instead of converting it again.
        "OVERRIDES": {"encoder_cache_dir": str(Path(smoke_encoder.path).parent)},
    }
    nb = nbformat.read(NOTEBOOK, as_version=4)
    _inject(nb, parameters)

    executed_path = work / "executed.ipynb"
    started = time.monotonic()
    failure: BaseException | None = None
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("JUPYTER_PATH", str(work / "kernel" / "share" / "jupyter"))  # searched first for kernels
        monkeypatch.setenv("IMDB_ARCHIVE", str(work / "no-such-archive"))  # smoke must not look for real data
        monkeypatch.setenv("PIP_NO_INDEX", "1")  # in case anything runs pip: no package index either
        monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures as image/png
        _install_kernelspec(work / "kernel")
        client = NotebookClient(
            nb,
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT_S,
            startup_timeout=180,
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        try:
            client.execute()
        except Exception as error:  # CellExecutionError, CellTimeoutError, DeadKernelError: report them alike
            failure = error
        finally:
            nbformat.write(nb, executed_path)
    elapsed = time.monotonic() - started
    print(f"Executed notebook ({elapsed:.0f} s): {executed_path}")
    if failure is not None:
        details = []
        for index, cell, output in _errors(nb):
            details.append(
                f"--- cell {index} (tags {_tags(cell)}) ---\n{cell.source}\n--- raised ---\n"
                + _strip_ansi("\n".join(output.get("traceback", [])) or f"{output.ename}: {output.evalue}")
            )
        pytest.fail(
            f"The notebook failed after {elapsed:.0f} s (executed copy: {executed_path}):\n"
            + ("\n".join(details) or f"{type(failure).__name__}: {_strip_ansi(str(failure))}"),
            pytrace=False,
        )
    return {"nb": nb, "serving_dir": serving_dir, "path": executed_path}


def test_runs_without_errors_in_this_environment_and_offline(executed) -> None:
    nb = executed["nb"]
    assert not _errors(nb)
    unexecuted = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.execution_count is None]
    assert not unexecuted, f"cells never executed: {unexecuted}"
    match = re.search(r"NOTEBOOK-TEST-REPORT (\{.*\})", _text(_tagged(nb, "test-report")))
    assert match, _text(_tagged(nb, "test-report"))
    report = json.loads(match.group(1))
    assert report["prefix"] == sys.prefix  # the kernel ran in this virtual environment
    assert report["network_attempts"] == []


def test_pushes_one_complete_version_to_the_serving_dir(executed) -> None:
    model_dir = executed["serving_dir"] / MODEL_NAME
    entries = sorted(p.name for p in model_dir.iterdir())
    assert len(entries) == 1 and entries[0].isdigit(), entries  # one integer version, no staging directory left
    version_dir = model_dir / entries[0]
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables" / "variables.index").is_file()
    push_text = _text(_tagged(executed["nb"], "push"))
    assert f"Pushed version {entries[0]} to {version_dir}" in push_text
    assert "saved_model.pb" in push_text


def test_shows_the_serving_engine_the_trainer_exported_and_the_server_ran(executed) -> None:
    text = _text(_tagged(executed["nb"], "serving-engine"))
    assert "serving_default: ONNX Runtime fp32, tolerance 0.0001, measured {" in text, text
    assert re.search(r"'max_abs_diff': \d", text), text  # the Trainer's measured difference from the SavedModel
    assert "InfraValidator's server ran serving_default on: onnxruntime fp32" in text


def test_runs_every_pipeline_component_once(executed) -> None:
    nb = executed["nb"]
    config_text = _text(_tagged(nb, "config"))
    listed = re.search(r"\d+ components: (.*)", config_text)
    assert listed, config_text
    component_ids = listed.group(1).strip().split(", ")
    assert {"ImdbExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(component_ids)
    timings = _text(_tagged(nb, "timings"))
    for component_id in component_ids:
        assert re.search(rf"^{component_id}\s+\d+\.\d", timings, re.MULTILINE), (component_id, timings)


def test_shows_ingestion_counts(executed) -> None:
    text = _text(_tagged(executed["nb"], "ingestion"))
    rows = {}
    for split in ("train", "eval"):
        match = re.search(rf"^{split}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", text, re.MULTILINE)
        assert match, text
        rows[split] = [int(v) for v in match.groups()]
    for read, kept, dropped, examples in rows.values():
        assert read == kept + dropped
        assert dropped > 0  # the generated smoke archive holds deliberately bad files
        assert 0 < examples <= kept
    assert "empty" in text


def test_shows_statistics_schema_and_anomalies(executed) -> None:
    nb = executed["nb"]
    for tag in ("statistics", "schema", "anomalies"):
        assert "text/html" in _mime_types(_tagged(nb, tag)), tag
    assert "'review'" in _text(_tagged(nb, "schema"))
    assert "anomalies found: 0" in _text(_tagged(nb, "anomalies-gate"))


def test_decodes_transformed_examples_to_wordpiece_tokens(executed) -> None:
    text = _text(_tagged(executed["nb"], "decoded-tokens"))
    token_lines = [line[len("tokens: ") :].split() for line in text.splitlines() if line.startswith("tokens: ")]
    assert len(token_lines) >= 3, text
    for tokens in token_lines:
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]", tokens
        assert "[PAD]" not in tokens
        assert all(token == token.lower() or token.startswith("[") for token in tokens)  # the encoder is uncased
    assert any(token.startswith("##") for tokens in token_lines for token in tokens)


def test_plots_the_training_curve(executed) -> None:
    nb = executed["nb"]
    cell = _tagged(nb, "training-curve")
    assert "image/png" in _mime_types(cell)
    assert re.search(r"\d+ steps of \d+ reviews", _text(cell))
    assert "--logdir" in _text(_tagged(nb, "tensorboard"))


def test_shows_eval_metrics_per_slice_and_the_blessing(executed) -> None:
    nb = executed["nb"]
    metrics = _text(_tagged(nb, "eval-metrics"))
    assert "binary_accuracy" in metrics and "example_count" in metrics
    assert re.search(r"^Overall\s", metrics, re.MULTILINE), metrics
    assert re.search(r"^rating=10\s", metrics, re.MULTILINE), metrics
    assert "widget" in " ".join(_mime_types(_tagged(nb, "evaluation-view")))
    assert re.search(r"binary accuracy [01]\.\d+ against the bar 0\.00: blessed", _text(_tagged(nb, "blessing")))


def test_scores_sentences_with_the_pushed_model(executed) -> None:
    nb = executed["nb"]
    text = _text(_tagged(nb, "scores"))
    assert "from_examples" in text and "serving_default" in text  # the signatures listed
    rows = re.findall(r"^\d+\s+(\S+)\s+(positive|negative)\s", text, re.MULTILINE)
    assert len(rows) >= 3, text
    for probability, label in rows:
        value = float(probability)
        assert 0.0 <= value <= 1.0
        assert label == ("positive" if value >= 0.5 else "negative")
    agreement = re.search(r"max \|from_examples - serving_default\| = (\S+)", _text(_tagged(nb, "signatures-agree")))
    assert agreement and float(agreement.group(1)) <= 1e-5
    assert str(executed["serving_dir"] / MODEL_NAME) in _text(_tagged(nb, "export"))


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code_cells)
    assert sum("parameters" in _tags(cell) for cell in code_cells) == 1


def test_explains_scores_word_by_word(executed) -> None:
    cell = _tagged(executed["nb"], "explain")
    assert "text/html" in _mime_types(cell)  # the coloured reviews
    gap = re.search(r"largest \|sum of shares - \(p - baseline\)\| over these sentences: (\S+)", _text(cell))
    assert gap and float(gap.group(1)) < 0.02, _text(cell)  # integrated gradients' completeness, to its error


def test_scores_a_file_and_reports_the_rows_it_could_not_score(executed) -> None:
    text = _text(_tagged(executed["nb"], "batch-scoring"))
    assert re.search(r"7 rows: 5 scored -> \S+reviews\.scored\.jsonl, 2 rejected \(", text), text
    assert "empty_text 1" in text and "malformed_json 1" in text


def test_reports_drift_of_a_shifted_stream(executed) -> None:
    nb = executed["nb"]
    assert "sent " in _text(_tagged(nb, "drift-traffic"))
    cell = _tagged(nb, "drift-report")
    assert {"text/markdown", "image/png"} <= _mime_types(cell)  # each report's summary and plot, inline
    assert re.search(r"(?<!un)shifted: drift or skew True", _text(cell))  # one- to three-word texts vs reviews
