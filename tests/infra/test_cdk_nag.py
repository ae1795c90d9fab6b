"""cdk-nag's AwsSolutions pack finds nothing unsuppressed in the stack."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match

from infra import nag
from infra.stack import ChatStack


def _nag_errors(stack: cdk.Stack) -> list[str]:
    found = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    return [f"{message.id}: {str(message.entry.data)[:160]}" for message in found]


def test_no_unsuppressed_errors(chat_stack: ChatStack, template: object) -> None:
    """Every AwsSolutions error is either fixed or suppressed with a reason."""
    assert _nag_errors(chat_stack) == []


def test_checker_reports_an_unsuppressed_finding() -> None:
    """The same check and collector do flag a problem (a role with an AWS managed policy)."""
    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    iam.Role(
        stack,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")],
    )
    nag.check(app)
    assert any("AwsSolutions-IAM4" in error for error in _nag_errors(stack))
