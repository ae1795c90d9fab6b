"""Build the Lambda code asset on this machine, without Docker.

The asset is a folder: the ``chat`` package from ``functions/`` plus the wheels of
``functions/requirements.lock``, installed by pip for Lambda's platform
(``--platform``/``--python-version``/``--only-binary``) with every hash checked, so an x86_64 laptop
builds an arm64 asset and two machines on two days build the same one. The lock (``make lock``,
``infra/locks.py``) leaves out what the Lambda runtime already provides (boto3 and its
dependencies): bundling botocore would shadow the runtime's copy and could mismatch its boto3.

Building is cached in two layers under ``build/``:

- the installed requirements, keyed by the lock and the target platform;
- the finished asset (requirements + source), keyed by that and the source files.

So a synth after a code change copies files but does not run pip again.

Both layers ship bytecode: Lambda's ``/var/task`` is read-only, so a module with no ``.pyc`` there
is compiled from source at every cold start, and nothing is saved for the next one (about 50 ms of
a route handler's import here). A ``.pyc`` belongs to one CPython minor version, so it is compiled
by an interpreter of the target's version (``python3.13``, found by ``bytecode_compiler``); where
there is none, the asset ships sources alone, as it did before, and synth says so.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra import constants

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = PROJECT_ROOT / "build"
FUNCTIONS_DIR = PROJECT_ROOT / constants.FUNCTIONS_DIR
PACKAGE_NAME = "chat"
LOCK_FILE = FUNCTIONS_DIR / "requirements.lock"

# Distributions every Lambda Python runtime ships (boto3 and what it depends on): not in the lock.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
# How many finished assets per target to keep in build/ (older ones are from earlier edits).
ASSETS_TO_KEEP = 3
PIP_TIMEOUT_SECONDS = 540
COMPILE_TIMEOUT_SECONDS = 300
# Where the asset's files are on Lambda: the path compiled into each .pyc.
LAMBDA_TASK_ROOT = "/var/task"
# An interpreter of the target's version to compile with, named explicitly (a path).
COMPILER_VARIABLE = "LAMBDA_PYTHON"


@dataclass(frozen=True)
class Target:
    """The platform an asset is built for: Lambda's CPU architecture and Python version."""

    architecture: str  # "arm64" or "x86_64", as Lambda names them
    python_version: str  # "3.13"

    def pip_platforms(self) -> list[str]:
        """The manylinux tags pip may pick wheels for (Lambda's glibc supports all of these)."""
        machine = {"arm64": "aarch64", "x86_64": "x86_64"}[self.architecture]
        return [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}", f"manylinux_2_34_{machine}"]

    def pip_target_options(self) -> list[str]:
        """pip options that install for this target rather than for the Python running pip."""
        options: list[str] = []
        for platform in self.pip_platforms():
            options += ["--platform", platform]
        return [
            *options,
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
        ]

    @property
    def label(self) -> str:
        return f"{self.architecture}-py{self.python_version}"


# What the deployed functions run on (see infra/functions.py).
LAMBDA_TARGET = Target(architecture="arm64", python_version=constants.PYTHON_RUNTIME.removeprefix("python"))


def build_asset(target: Target = LAMBDA_TARGET, *, build_dir: Path = BUILD_DIR) -> Path:
    """The folder to hand to ``lambda_.Code.from_asset``: built now, or reused from the cache."""
    compiler = bytecode_compiler(target)
    if compiler is None:
        print(
            f"note: no Python {target.python_version} found (on PATH as python{target.python_version}, "
            f"in pyenv, or named by {COMPILER_VARIABLE}): the Lambda asset ships sources only, "
            "which every cold start compiles",
            file=sys.stderr,
        )
    requirements_dir = _build_requirements(target, build_dir, compiler)
    key = _digest(requirements_dir.name, *_source_fingerprint())
    asset_dir = build_dir / f"asset-{target.label}-{key}"
    if not asset_dir.is_dir():
        with staging_dir(asset_dir) as staging:
            shutil.copytree(requirements_dir, staging, dirs_exist_ok=True)
            shutil.copytree(FUNCTIONS_DIR / PACKAGE_NAME, staging / PACKAGE_NAME, ignore=_not_source)
            if compiler is not None:
                compile_bytecode(staging / PACKAGE_NAME, compiler.path, root=staging)
        _prune_old_assets(build_dir, target, keep=asset_dir)
    return asset_dir


@dataclass(frozen=True)
class Compiler:
    """An interpreter of the target's Python version, and its exact version (part of cache keys:
    two patch releases may compile a source differently)."""

    path: str
    version: str  # "3.13.0"


def bytecode_compiler(target: Target) -> Compiler | None:
    """An interpreter of ``target``'s Python version: the one ``$LAMBDA_PYTHON`` names (which must
    be of that version), else ``pythonX.Y`` on PATH, else pyenv's newest X.Y; None if none runs.

    A short search of our own: the tools that find interpreters by version (uv, pyenv itself) are
    not among what a deploy needs, and none is required to be installed."""
    named = os.environ.get(COMPILER_VARIABLE)
    if named:
        compiler = _compiler_at(named)
        if compiler is None or not compiler.version.startswith(f"{target.python_version}."):
            found = compiler.version if compiler else "nothing that runs"
            raise RuntimeError(f"{COMPILER_VARIABLE}={named} is {found}, not Python {target.python_version}")
        return compiler
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        sys.executable,
        shutil.which(f"python{target.python_version}"),
        *sorted(
            glob.glob(f"{pyenv_root}/versions/{target.python_version}.*/bin/python{target.python_version}")
        )[::-1],
    ]
    for candidate in candidates:
        compiler = _compiler_at(candidate) if candidate else None
        if compiler is not None and compiler.version.startswith(f"{target.python_version}."):
            return compiler
    return None


def _compiler_at(path: str) -> Compiler | None:
    """The interpreter at ``path`` and its version, if it runs (a pyenv shim of a version that is
    not selected exits with an error)."""
    try:
        result = subprocess.run(  # noqa: S603 - an interpreter's path, asked its version
            [path, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    version = result.stdout.strip()
    return Compiler(path, version) if result.returncode == 0 and version else None


def compile_bytecode(folder: Path, python: str, *, root: Path) -> None:
    """Compile every module under ``folder`` with ``python``, each .pyc naming its source's path on
    Lambda (``/var/task/...``, ``root`` being the asset's top), not the build folder's, so that two
    builds give the same bytes.

    Checked-hash .pyc files: valid whatever times the zip gives the files, and a source edited
    later (in the Lambda console, say) is noticed by its hash and compiled again, not shadowed.
    """
    command = [
        python,
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "checked-hash",
        "-s",
        str(root),
        "-p",
        LAMBDA_TASK_ROOT,
        str(folder),
    ]
    result = subprocess.run(  # noqa: S603 - a fixed program with arguments built here
        command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"compiling {folder} failed:\n{result.stdout}\n{result.stderr}")


def install_requirements(requirement_specs: list[str], destination: Path, target: Target) -> None:
    """``pip install --target`` the given requirements, all binary wheels for ``target``."""
    _pip(
        "install",
        "--quiet",
        "--no-compile",  # this machine's Python may not be the target's: compile_bytecode does it
        "--target",
        str(destination),
        *target.pip_target_options(),
        *requirement_specs,
    )


def _build_requirements(target: Target, build_dir: Path, compiler: Compiler | None) -> Path:
    """The locked requirements installed for ``target`` and compiled by ``compiler`` (cached by
    the lock's text and the compiler's version)."""
    bytecode = f"cpython-{compiler.version}" if compiler else "sources-only"
    key = _digest(LOCK_FILE.read_text(), target.label, bytecode)
    requirements_dir = build_dir / f"requirements-{target.label}-{key}"
    if not requirements_dir.is_dir():
        with staging_dir(requirements_dir) as staging:
            # The lock pins every distribution, so pip resolves nothing and checks every hash.
            install_requirements(["--no-deps", "--require-hashes", "-r", str(LOCK_FILE)], staging, target)
            if compiler is not None:
                compile_bytecode(staging, compiler.path, root=staging)
    return requirements_dir


def _pip(*args: str) -> None:
    """Run this interpreter's pip; on failure, raise with pip's own output."""
    command = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(  # noqa: S603 - a fixed program with arguments built here
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip failed ({' '.join(args[:2])}):\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Build in a private folder and rename it into place, so no one sees a half-built one.

    Two synths racing to build the same folder is harmless: the loser's copy is dropped.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        with contextlib.suppress(OSError):  # already there: another process finished first
            os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _source_fingerprint() -> list[str]:
    """Each source file's path and content hash, in a stable order."""
    package = FUNCTIONS_DIR / PACKAGE_NAME
    files = sorted(p for p in package.rglob("*") if p.is_file() and not _is_generated(p))
    return [f"{p.relative_to(package)}:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in files]


def _is_generated(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}


def _not_source(_directory: str, names: list[str]) -> list[str]:
    """``shutil.copytree`` ignore hook: skip bytecode caches."""
    return [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))]


def _prune_old_assets(build_dir: Path, target: Target, keep: Path) -> None:
    """Delete all but the newest few assets of ``target`` (each code edit makes a new one)."""
    assets = sorted(build_dir.glob(f"asset-{target.label}-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [a for a in assets if a != keep][ASSETS_TO_KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
