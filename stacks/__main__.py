"""`python -m stacks`: pick, install, check and lock the TFX stack of an interpreter (standard library only).

    python -m stacks name                         # the stack's name, or exit 2 with what works
    python -m stacks describe
    python -m stacks install (--venv DIR | --python PY) [--project PATH_OR_WHEEL] [--editable]
    python -m stacks check --python PY            # exit 1 unless PY has exactly the lock's versions
    python -m stacks lock --python PY             # PY: a fresh venv; writes stacks/locks/<stack>-py<XY>.txt

The Makefile and the notebook's first cell install through `install`, so a laptop, CI and Colab get the same set.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stacks import NOTEBOOK_FRONTEND, Stack, UnsupportedStack, choose

PROJECT_DISTRIBUTION = "bert-imdb-tfx"
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def _interpreter(python: str) -> tuple[tuple[int, int], tuple[int, int] | None, str]:
    """The (major, minor), glibc and machine of another interpreter: the stack is that interpreter's, not ours."""
    code = (
        "import json, os, platform, sys; v = os.confstr('CS_GNU_LIBC_VERSION') or '';"
        "print(json.dumps([sys.version_info[:2], v, platform.machine()]))"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout
    version, libc, machine = json.loads(out)
    glibc = None
    if libc.startswith("glibc "):
        major, minor = libc.split()[1].split(".")[:2]
        glibc = (int(major), int(minor))
    return (int(version[0]), int(version[1])), glibc, machine


def ensure_venv(venv: Path) -> str:
    """`venv`'s interpreter, (re)creating it with this Python when it is missing or another Python's."""
    python = venv / "bin" / "python"
    if python.exists():
        version, _, _ = _interpreter(str(python))
        if version == (sys.version_info.major, sys.version_info.minor):
            return str(python)
    print(f"Creating {venv} with Python {sys.version.split()[0]} ({sys.executable})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip"], check=True
    )
    return str(python)


def stack_for(python: str | None) -> Stack:
    if python is None or Path(python).resolve() == Path(sys.executable).resolve():
        return choose()
    version, glibc, machine = _interpreter(python)
    return choose(version, glibc, machine)


def _pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def read_lock(path: Path) -> dict[str, str]:
    """{normalised name: version} of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = _REQUIREMENT.match(line.strip())
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _pinned_name(line: str) -> str | None:
    match = _REQUIREMENT.match(line.strip())
    return _normalise(match.group(1)) if match else None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install(stack: Stack, python: str, project: str | None, editable: bool, keep_frontend: bool = False) -> None:
    """The lock with --no-deps (exactly what CI tested), or the stack's input resolved where no lock exists.

    `keep_frontend` (Colab): the kernel and notebook front-end packages stay as the runtime has them.
    """
    if stack.lock is not None:
        lines = stack.lock.read_text().splitlines()
        if keep_frontend:
            lines = [line for line in lines if _pinned_name(line) not in NOTEBOOK_FRONTEND]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="lock-", delete=False) as handle:
            handle.write("\n".join(lines) + "\n")
        try:
            _pip(python, "--no-deps", *stack.pip_args, "-r", handle.name)
        finally:
            Path(handle.name).unlink()
    else:
        print(f"No lock for {stack.describe()}; resolving {stack.input.name} (not what CI tested)", flush=True)
        _resolve(stack, python)
    if project:
        flags = ["--no-deps", "--no-build-isolation"] + (["-e"] if editable else [])
        _pip(python, *flags, project)


def _resolve(stack: Stack, python: str) -> None:
    """The stack's TFX set (with its pip arguments), then the common tools under its pins, then the no-deps ones.

    Two steps because `--ignore-requires-python` (TFX 1.16) must not apply to the tools: it would pick releases
    that need a newer Python (contourpy 1.4 for matplotlib did).
    """
    _pip(python, *stack.pip_args, "-r", str(stack.input))
    _pip(python, "-c", str(stack.input), "-r", str(stack.common))
    _pip(python, "--no-deps", "-r", str(stack.nodeps))


def installed_versions(python: str) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}))"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout
    return {_normalise(name): version for name, version in json.loads(out).items()}


def check(stack: Stack, python: str, keep_frontend: bool = False) -> list[str]:
    """What differs from the lock (empty: the interpreter has exactly the tested set)."""
    if stack.lock is None:
        return [f"no lock for {stack.describe()}"]
    have = installed_versions(python)
    problems = []
    for name, version in read_lock(stack.lock).items():
        if keep_frontend and name in NOTEBOOK_FRONTEND:
            continue
        if have.get(name) != version:
            problems.append(f"{name}: locked {version}, installed {have.get(name, 'nothing')}")
    return problems


def write_lock(stack: Stack, python: str) -> Path:
    """Install the stack's input into `python` (a fresh venv) and pin everything it then holds."""
    _pip(python, "--upgrade", "pip", "wheel")
    _resolve(stack, python)
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    pins = sorted(
        (line for line in frozen if _REQUIREMENT.match(line) and not line.lower().startswith(("pip==",))),
        key=str.lower,
    )
    pins = [line for line in pins if _normalise(line.split("==")[0]) != PROJECT_DISTRIBUTION]
    target = stack.input.parent / stack.lock_name
    header = [
        f"# {stack.name} (TFX {stack.tfx}) on Python {stack.python[0]}.{stack.python[1]}: every package, pinned.",
        f"# Written by `make lock` (python -m stacks lock) on {datetime.date.today().isoformat()}, "
        f"{platform.machine()}, glibc {'.'.join(map(str, stack.glibc or ()))}, from {stack.input.name}, "
        f"{stack.common.name} and {stack.nodeps.name}.",
        "# Installed with `pip install --no-deps" + "".join(f" {a}" for a in stack.pip_args) + " -r <this file>`.",
    ]
    target.write_text("\n".join(header + pins) + "\n")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("name", "describe", "install", "check", "lock"))
    parser.add_argument("--python", default=None, help="the interpreter to act on (default: this one)")
    parser.add_argument("--venv", type=Path, default=None, help="install: into this venv, made with this Python")
    parser.add_argument("--project", default=None, help="install: also this project (a path or a wheel)")
    parser.add_argument("--editable", action="store_true", help="install: the project in editable mode")
    parser.add_argument(
        "--keep-frontend", action="store_true", help="install/check: leave the kernel and notebook packages (Colab)"
    )
    args = parser.parse_args(argv)
    try:
        stack = stack_for(args.python)
    except UnsupportedStack as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    python = args.python or sys.executable
    if args.venv is not None:
        python = ensure_venv(args.venv)
    if args.command == "name":
        print(stack.name)
    elif args.command == "describe":
        print(stack.describe())
    elif args.command == "install":
        install(stack, python, args.project, args.editable, args.keep_frontend)
    elif args.command == "check":
        problems = check(stack, python, args.keep_frontend)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    else:
        print(f"wrote {write_lock(stack, python)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
