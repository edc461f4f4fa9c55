"""Run notebooks/bert_imdb_tfx.ipynb from its first cell as a Colab user would, offline, and check what it left.

    python tools/colab_emulation.py --runtime latest --python python3.13     # Colab's default runtime
    python tools/colab_emulation.py --runtime 2025.07 --python python3.11    # the pinned Python 3.11 runtime

What "as Colab" means here:
1. A fresh environment with what that Colab runtime has preinstalled (tools/colab/preinstalled-<runtime>.txt, from
   googlecolab/backend-info) and a stand-in `google.colab` (tools/colab/standin: Drive is a local folder), imported
   at kernel start as Colab does.
2. The project's wheel (what a user uploads to Colab's Files pane) in the kernel's working directory, as /content.
3. The first cell runs on its own: it must install the stack that matches the runtime's Python and restart the
   runtime. A new kernel then runs every cell from the top on `smoke` (the first cell must see the installation
   and go on), with connections to anything but loopback refused after the install.
4. Checks: no cell failed, the first run asked for a restart and the second did not, the kernel has exactly the
   lock's versions (Colab's own kernel packages aside), TFMA's widget manager was enabled, and the pushed
   SavedModel reached the stand-in Drive.
Writes the executed notebook and a JSON report under --workdir, and prints
`colab emulation (<runtime>): N passed, 0 failed`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "bert_imdb_tfx.ipynb"
COLAB_DIR = Path(__file__).resolve().parent / "colab"
RUNTIMES = {"latest": (3, 13), "2025.07": (3, 11)}
RESTART_MARKER = "Restarting the runtime"
INSTALLED_MARKER = "installation found"
CELL_TIMEOUT_S = 3600

PARAMETERS = """
PRESET = "smoke"
"""

# After the parameters: only loopback from here on (the install in the first cell needed the package registry).
NETWORK_GUARD = """
import socket as _socket

NETWORK_ATTEMPTS = []
_connect, _connect_ex = _socket.socket.connect, _socket.socket.connect_ex


def _loopback(address):
    if not isinstance(address, tuple):
        return True
    host = str(address[0])
    return host in ("localhost", "::1") or host.startswith("127.") or host.startswith("::ffff:127.")


def _guard(original):
    def connect(self, address):
        if not _loopback(address):
            NETWORK_ATTEMPTS.append(repr(address))
            raise OSError(f"network access is disabled in this emulation (tried {address!r})")
        return original(self, address)

    return connect


_socket.socket.connect, _socket.socket.connect_ex = _guard(_connect), _guard(_connect_ex)
"""

REPORT = """
import json as _json
from google.colab import output as _output

print("COLAB-EMULATION-REPORT " + _json.dumps({"network_attempts": NETWORK_ATTEMPTS, "widget_calls": _output.CALLS}))
"""


def sh(*args: str | Path, **kwargs: Any) -> None:
    print("$", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True, **kwargs)


def python_version(python: str) -> tuple[int, int]:
    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
    major, minor = out.stdout.split()
    return int(major), int(minor)


def make_runtime(runtime: str, python: str, root: Path) -> Path:
    """A fresh environment with the runtime's preinstalled packages and the stand-in google.colab."""
    venv = root / "runtime"
    sh(python, "-m", "venv", venv)
    kernel_python = venv / "bin" / "python"
    sh(kernel_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip")
    sh(kernel_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
       COLAB_DIR / f"preinstalled-{runtime}.txt")  # fmt: skip
    site = subprocess.run(
        [kernel_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    shutil.copytree(COLAB_DIR / "standin" / "google" / "colab", Path(site) / "google" / "colab")
    # Colab's kernel has google.colab imported before the first cell runs.
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # noqa: F401\n")
    return kernel_python


def build_wheel(content: Path) -> Path:
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", content, REPO)
    (wheel,) = content.glob("bert_imdb_tfx-*.whl")
    return wheel


def kernelspec(root: Path, kernel_python: Path) -> Path:
    spec_dir = root / "kernels" / "colab-emulation"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [str(kernel_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Colab emulation", "language": "python"}  # fmt: skip
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return root


def cell_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            parts.append("\n".join(output.get("traceback", [])))
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def prepared_notebook() -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    injected = [nbformat.v4.new_code_cell(PARAMETERS + NETWORK_GUARD, metadata={"tags": ["injected-parameters"]})]
    nb.cells[index + 1 : index + 1] = injected
    nb.cells.append(nbformat.v4.new_code_cell(REPORT, metadata={"tags": ["emulation-report"]}))
    return nb


def run_session(nb: nbformat.NotebookNode, cells: range, env: dict[str, str], content: Path) -> None:
    """One kernel's life: execute `cells` in order, as a user pressing Shift+Enter would."""
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="colab-emulation", resources={"metadata": {"path": str(content)}}
    )
    with client.setup_kernel(env=env, cwd=str(content)):
        for index in cells:
            cell = nb.cells[index]
            if cell.cell_type != "code":
                continue
            started = time.monotonic()
            client.execute_cell(cell, index)
            print(f"  cell {index} ({','.join(cell.metadata.get('tags', []))}) {time.monotonic() - started:.1f} s",
                  flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), required=True)
    parser.add_argument("--python", required=True, help="the interpreter the runtime's Python stands for")
    parser.add_argument("--workdir", type=Path, default=REPO / ".stacks" / "colab")
    args = parser.parse_args()
    wanted = RUNTIMES[args.runtime]
    if python_version(args.python) != wanted:
        parser.error(f"runtime {args.runtime} is Python {wanted[0]}.{wanted[1]}; {args.python} is not")

    root = args.workdir / args.runtime
    shutil.rmtree(root, ignore_errors=True)
    content, drive = root / "content", root / "drive-backing"
    content.mkdir(parents=True)
    started = time.monotonic()
    kernel_python = make_runtime(args.runtime, args.python, root)
    os.environ["JUPYTER_PATH"] = str(kernelspec(root, kernel_python))  # where nbclient finds the kernel
    wheel = build_wheel(content)
    print(f"Runtime {args.runtime} ready in {time.monotonic() - started:.0f} s; uploaded {wheel.name}", flush=True)

    env = {
        "PATH": f"{kernel_python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root / "home"),
        "IPYTHONDIR": str(root / "ipython"),
        "COLAB_STANDIN_DRIVE": str(drive),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "LANG": "C.UTF-8",
    }
    for key in ("PIP_CACHE_DIR", "PIP_CONFIG_FILE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        if key in os.environ:
            env[key] = os.environ[key]
    # The host's pip cache, as a warm cache stands in for Colab's fast network.
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))

    nb = prepared_notebook()
    setup = next(i for i, c in enumerate(nb.cells) if "setup" in c.get("metadata", {}).get("tags", []))
    checks: dict[str, bool] = {}
    print("Session 1: the first cell alone (install, restart)", flush=True)
    try:
        run_session(nb, range(setup, setup + 1), env, content)
    except (CellExecutionError, DeadKernelError) as error:  # the restart may surface as either
        print(f"  session 1 ended: {type(error).__name__}", flush=True)
    first = cell_text(nb.cells[setup])
    checks["first run installed the stack and asked for a restart"] = RESTART_MARKER in first
    first_outputs = nb.cells[setup].outputs

    print("Session 2: a new kernel, every cell from the top", flush=True)
    error_text = ""
    try:
        run_session(nb, range(len(nb.cells)), env, content)
    except (CellExecutionError, DeadKernelError) as error:
        error_text = str(error)[-3000:]
    second = cell_text(nb.cells[setup])
    checks["second run saw the installation and went on"] = INSTALLED_MARKER in second and RESTART_MARKER not in second
    checks["every cell ran without an error"] = not error_text
    report_text = cell_text(nb.cells[-1])
    report = json.loads(report_text.split("COLAB-EMULATION-REPORT ", 1)[1]) if "REPORT" in report_text else {}
    checks["no connection beyond loopback after the install"] = report.get("network_attempts") == []
    checks["TFMA's custom widget manager enabled"] = "enable_custom_widget_manager" in report.get("widget_calls", [])
    lock_check = subprocess.run(
        [kernel_python, "-m", "stacks", "check", "--keep-frontend"], capture_output=True, text=True, cwd=content
    )
    checks["kernel has exactly the lock's versions"] = lock_check.returncode == 0
    pushed = sorted((drive / "bert-imdb-tfx").glob("*/*/saved_model.pb"))
    checks["the pushed SavedModel reached Drive"] = bool(pushed)

    nb.cells[setup].outputs = first_outputs + nb.cells[setup].outputs
    nbformat.write(nb, root / "executed.ipynb")
    summary = {
        "runtime": args.runtime,
        "python": ".".join(map(str, wanted)),
        "wall_s": round(time.monotonic() - started, 1),
        "checks": checks,
        "error": error_text,
        "lock_check": lock_check.stdout[-2000:],
        "pushed": [str(p.parent) for p in pushed],
    }
    (root / "report.json").write_text(json.dumps(summary, indent=2))
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if error_text:
        print(error_text)
    if lock_check.returncode:
        print(lock_check.stdout[-2000:])
    failed = sum(not ok for ok in checks.values())
    print(f"Executed notebook: {root / 'executed.ipynb'}; report: {root / 'report.json'}")
    print(f"colab emulation ({args.runtime}): {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
