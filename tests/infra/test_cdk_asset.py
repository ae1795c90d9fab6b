"""Deploy-readiness of the Lambda code asset, without an AWS account.

- The real asset (arm64, CPython 3.13) holds only wheels Lambda can load there.
- The same packaging, built for this machine, imports every handler in a fresh interpreter that
  has nothing but the asset and what the Lambda runtime provides (boto3 and its dependencies).
"""

from __future__ import annotations

import platform
import re
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


@pytest.mark.slow
@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_imports_from_the_asset_alone(module: str, host_asset: Path, runtime_stand_in: Path) -> None:
    """A fresh interpreter with only the asset and the runtime's boto3 imports the handler."""
    script = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(host_asset)!r}, {str(runtime_stand_in)!r}]\n"
        f"handler = importlib.import_module({module!r}).handler\n"
        "assert callable(handler)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_lambda_like_environment(),
    )
    assert result.returncode == 0, result.stderr


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
