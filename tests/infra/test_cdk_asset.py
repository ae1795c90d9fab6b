"""Deploy-readiness of the Lambda code asset, without an AWS account.

- The real asset (arm64, CPython 3.13) holds only wheels Lambda can load there.
- The same packaging, built for this machine, imports every handler in a fresh interpreter that
  has nothing but the asset and what the Lambda runtime provides (boto3 and its dependencies),
  each of the asset's modules from its bytecode.
- The bytecode: compiled by CPython 3.13 for the real asset, checked by hash, naming /var/task,
  the same bytes on every build.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from infra import constants, functions, packaging
from infra.environment import function_environment

HANDLER_MODULES = sorted(
    {
        handler.rsplit(".", 1)[0]
        for handler in [route.handler for route in constants.ROUTES]
        + [constants.AUTHORIZER_HANDLER, constants.PRESIGNUP_HANDLER, constants.PRESENCE_CHECK_HANDLER]
    }
)
HOST_TARGET = packaging.Target(
    architecture="x86_64" if platform.machine() in {"x86_64", "AMD64"} else "arm64",
    python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
)
ELF_MACHINE_AARCH64 = 183
# The flags word of a .pyc (bytes 4-8): hash-based (1) and checked against the source (2).
PYC_CHECKED_HASH = 0b11


@pytest.fixture(scope="module")
def lambda_asset() -> Path:
    return packaging.build_asset(packaging.LAMBDA_TARGET)


@pytest.fixture(scope="module")
def host_asset() -> Path:
    return packaging.build_asset(HOST_TARGET)


@pytest.fixture(scope="module")
def runtime_stand_in() -> Path:
    """A folder with what every Lambda Python runtime has: boto3 and its dependencies (cached)."""
    boto3 = f"boto3=={metadata.version('boto3')}"
    folder = packaging.BUILD_DIR / f"runtime-stand-in-{HOST_TARGET.label}-{boto3.replace('==', '-')}"
    if not folder.is_dir():
        with packaging.staging_dir(folder) as staging:
            packaging.install_requirements([boto3], staging, HOST_TARGET)
    return folder


def test_asset_targets_the_functions_platform() -> None:
    """The asset is built for the architecture and Python version the functions are deployed with."""
    assert packaging.LAMBDA_TARGET.architecture == functions.ARCHITECTURE.name == "arm64"
    assert (
        f"python{packaging.LAMBDA_TARGET.python_version}"
        == functions.RUNTIME.name
        == constants.PYTHON_RUNTIME
    )


def _wheel_tags(asset: Path) -> dict[str, list[str]]:
    """Distribution -> the Tag lines of its WHEEL file."""
    tags = {}
    for wheel in asset.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        tags[wheel.parent.name] = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
    return tags


def _fits_lambda(tag: str) -> bool:
    """A wheel tag CPython 3.13 on Linux aarch64 accepts."""
    interpreter, abi, platform_tag = tag.split("-")
    pure = interpreter in {"py3", "py2.py3"} and abi == "none" and platform_tag == "any"
    native_abi = interpreter == "cp313" and abi == "cp313"
    stable_abi = interpreter.startswith("cp3") and int(interpreter[3:]) <= 13 and abi == "abi3"
    linux_arm = (
        platform_tag.endswith("_aarch64") and platform_tag.startswith(("manylinux", "musllinux")) is True
    )
    return pure or ((native_abi or stable_abi) and linux_arm and not platform_tag.startswith("musllinux"))


def test_lambda_asset_has_only_wheels_for_cp313_aarch64(lambda_asset: Path) -> None:
    """Every bundled wheel is pure Python or built for CPython 3.13 (or the stable ABI) on aarch64."""
    tags = _wheel_tags(lambda_asset)
    assert tags, "no installed distributions found in the asset"
    misfits = {name: t for name, t in tags.items() if not any(_fits_lambda(tag) for tag in t)}
    assert misfits == {}


def test_lambda_asset_native_code_is_aarch64(lambda_asset: Path) -> None:
    """Every shared library in the asset, should a dependency bring one, is an aarch64 ELF file (none
    built for this machine). Today there is none: every bundled package is pure Python."""
    for library in lambda_asset.rglob("*.so"):
        header = library.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", library
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, library


def test_lambda_asset_leaves_boto3_to_the_runtime(lambda_asset: Path) -> None:
    """boto3 and botocore are not bundled: a second botocore would shadow the runtime's own."""
    bundled = {path.name.split("-")[0].lower() for path in lambda_asset.glob("*.dist-info")}
    assert bundled.isdisjoint({"boto3", "botocore", "s3transfer", "urllib3"})
    assert (lambda_asset / "chat" / "config.py").is_file()


def test_lambda_asset_holds_exactly_the_locked_versions(lambda_asset: Path) -> None:
    """Every distribution in the asset is pinned by functions/requirements.lock, at that version."""
    pins = re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s]+)", packaging.LOCK_FILE.read_text(), re.M)
    locked = {(name.replace("-", "_").lower(), version) for name, version in pins}
    bundled = {
        tuple(path.name.removesuffix(".dist-info").lower().rsplit("-", 1))
        for path in lambda_asset.glob("*.dist-info")
    }
    assert bundled == locked


@pytest.fixture(scope="module")
def lambda_compiler() -> packaging.Compiler:
    compiler = packaging.bytecode_compiler(packaging.LAMBDA_TARGET)
    if compiler is None:
        pytest.skip("no Python 3.13 on this machine: the asset ships sources only")
    return compiler


@pytest.mark.slow
@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_imports_from_the_asset_alone(module: str, host_asset: Path, runtime_stand_in: Path) -> None:
    """A fresh interpreter with only the asset and the runtime's boto3 imports the handler, and
    compiles none of the asset's modules: each comes from its .pyc."""
    script = (
        f"sys.path[:0] = [{str(host_asset)!r}, {str(runtime_stand_in)!r}]\n"
        "import importlib\n"
        f"handler = importlib.import_module({module!r}).handler\n"
        "assert callable(handler)\n"
    )
    result = _run_verbose(sys.executable, script, env=_lambda_like_environment())
    loaded = _loaded_from(result.stderr, host_asset)
    assert f"{module.replace('.', '/')}.py" in {Path(source).as_posix() for source in loaded}
    assert {source for source, origin in loaded.items() if not origin.endswith(".pyc")} == set()


def _run_verbose(
    python: str, script: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh, isolated ``python -v`` that writes no bytecode (as on Lambda, where
    /var/task is read-only); it must succeed."""
    code = "import sys\nsys.dont_write_bytecode = True\n" + script
    result = subprocess.run(
        [python, "-I", "-S", "-v", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result


def _loaded_from(verbose_output: str, folder: Path) -> dict[str, str]:
    """From ``python -v``'s output: each module source under ``folder`` (relative) -> the file its
    code came from (a .pyc, or the .py itself when it was compiled)."""
    loaded = {}
    for line in verbose_output.splitlines():
        if not line.startswith("# code object from ") or str(folder) not in line:
            continue
        origin = line.removeprefix("# code object from ").strip("'")
        source = importlib.util.source_from_cache(origin) if origin.endswith(".pyc") else origin
        loaded[str(Path(source).relative_to(folder))] = origin
    return loaded


def test_lambda_asset_ships_checked_bytecode_of_cpython_313_for_every_module(
    lambda_asset: Path, lambda_compiler: packaging.Compiler
) -> None:
    """Every module, ours and the bundled packages', has a .pyc of Lambda's Python version, and
    each is checked against its source's hash (zip times do not matter; an edited source wins)."""
    assert lambda_compiler.version.startswith("3.13.")
    magic = _magic_number(lambda_compiler.path)
    sources = sorted(lambda_asset.rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        header = compiled.read_bytes()[:8]
        assert header[:4] == magic, compiled
        assert int.from_bytes(header[4:8], "little") == PYC_CHECKED_HASH, compiled


def _magic_number(python: str) -> bytes:
    script = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    return bytes.fromhex(
        subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout
    )


def test_lambda_asset_modules_load_from_their_bytecode_on_cpython_313(
    lambda_asset: Path, lambda_compiler: packaging.Compiler
) -> None:
    """Python 3.13 takes the asset's .pyc files as they are (those importable without the packages
    the runtime provides, ours and the bundled packages'); each names its source where Lambda has it,
    not where it was built."""
    script = (
        f"sys.path.insert(0, {str(lambda_asset)!r})\n"
        "import chat.protocol, h11, rsa\n"  # those that need no package the runtime provides
        "import marshal, importlib.util\n"
        "with open(importlib.util.cache_from_source(chat.protocol.__file__), 'rb') as pyc:\n"
        "    print(marshal.loads(pyc.read()[16:]).co_filename)\n"
    )
    result = _run_verbose(lambda_compiler.path, script)
    assert result.stdout.strip() == "/var/task/chat/protocol.py"
    loaded = _loaded_from(result.stderr, lambda_asset)
    assert {"chat/protocol.py", "h11/__init__.py", "rsa/__init__.py"} <= set(loaded)
    assert {source for source, origin in loaded.items() if not origin.endswith(".pyc")} == set()


def test_a_source_edited_after_compiling_is_compiled_again_not_shadowed(tmp_path: Path) -> None:
    """Checked-hash bytecode: a module edited after the build (in the Lambda console, say) runs as
    edited, not as the stale .pyc says."""
    shutil.copytree(
        packaging.FUNCTIONS_DIR / "chat", tmp_path / "chat", ignore=shutil.ignore_patterns("__pycache__")
    )
    packaging.compile_bytecode(tmp_path / "chat", sys.executable, root=tmp_path)
    edited = tmp_path / "chat" / "config.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")
    script = f"import sys; sys.dont_write_bytecode = True; sys.path.insert(0, {str(tmp_path)!r})\n"
    script += "import chat.config; print(chat.config.EDITED)"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "True", result.stderr


def test_compiling_the_same_sources_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    """The bytecode is part of the asset's hash: two builds of one tree must not differ in it."""
    builds = []
    for name in ("one", "two"):
        root = tmp_path / name
        shutil.copytree(
            packaging.FUNCTIONS_DIR / "chat", root / "chat", ignore=shutil.ignore_patterns("__pycache__")
        )
        packaging.compile_bytecode(root / "chat", sys.executable, root=root)
        builds.append({p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.pyc"))})
    assert builds[0] and builds[0] == builds[1]


def test_the_compiler_named_by_lambda_python_must_be_of_the_targets_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Naming an interpreter of another version is an error, not a quietly useless asset."""
    monkeypatch.setenv(packaging.COMPILER_VARIABLE, sys.executable)
    other = packaging.Target(
        architecture="arm64", python_version="3.9" if sys.version_info[:2] != (3, 9) else "3.8"
    )
    with pytest.raises(RuntimeError, match="not Python"):
        packaging.bytecode_compiler(other)
    compiler = packaging.bytecode_compiler(HOST_TARGET)
    assert compiler is not None and compiler.version == platform.python_version()


def _lambda_like_environment() -> dict[str, str]:
    """Variables Lambda sets, plus the chat's own with placeholder values (none are read at import)."""
    return {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "import-check",
        "LANG": "C.UTF-8",
        **function_environment(
            connections_table="connections",
            presence_table="presence",
            messages_table="messages",
            user_pool_id="us-east-1_example",
            user_pool_client_id="example",
            region="us-east-1",
        ),
    }
