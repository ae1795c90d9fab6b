"""cfn-lint accepts the synthesized template (CloudFormation would, too)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aws_cdk.assertions import Template

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
# W3005: CDK adds DependsOn on a role the function already references; redundant, not wrong.
IGNORED = "W3005"


def test_cfn_lint_passes(template: Template, tmp_path: Path) -> None:
    """No cfn-lint error or warning (besides the redundant-dependency note CDK always produces)."""
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template.to_json()))
    result = subprocess.run(
        [str(CFN_LINT), "--ignore-checks", IGNORED, "--", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
