"""One synthesized stack per test session (synth takes seconds), shared by every infra test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra import constants, nag, user_pool_rules
from infra.stack import ChatStack

ROOT = Path(__file__).resolve().parents[2]


def synthesize(**context: Any) -> ChatStack:
    """The stack as `cdk synth` builds it: cdk.json's context, plus ``context``, cdk-nag attached."""
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    app = cdk.App(context={**cdk_json["context"], **context})
    stack = ChatStack(app, constants.STACK_NAME)
    nag.check(app)
    return stack


def all_functions(chat_stack: ChatStack) -> dict[str, Any]:
    """Every function of the stack by its short name: the routes' function ids and the others."""
    return {
        **chat_stack.functions.routes,
        "FanoutWorker": chat_stack.functions.fanout_worker,
        "PresenceCheck": chat_stack.functions.presence_check,
        "Authorizer": chat_stack.functions.authorizer,
        "PreSignUp": chat_stack.identity.pre_sign_up,
    }


@pytest.fixture(scope="session")
def chat_stack() -> ChatStack:
    return synthesize()


@pytest.fixture(scope="session")
def template(chat_stack: ChatStack) -> Template:
    return Template.from_stack(chat_stack)


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, Any]:
    """The template's Resources section, by logical id."""
    return template.to_json()["Resources"]


@pytest.fixture(scope="session")
def verify_email_stack() -> ChatStack:
    """The stack with auto-confirmation turned off (`-c autoConfirmSignUp=false`)."""
    return synthesize(**{user_pool_rules.AUTO_CONFIRM_CONTEXT_KEY: "false"})


@pytest.fixture(scope="session")
def verify_email_template(verify_email_stack: ChatStack) -> Template:
    return Template.from_stack(verify_email_stack)


@pytest.fixture(scope="session")
def no_web_client_template() -> Template:
    """The stack without hosting (`-c webClient=false`), for users who bring their own."""
    return Template.from_stack(synthesize(**{constants.WEB_CLIENT_CONTEXT_KEY: "false"}))


def logical_id(construct: Any) -> str:
    """The CloudFormation logical id of an L2 construct's main resource."""
    return cdk.Stack.of(construct).get_logical_id(construct.node.default_child)


def of_type(resources: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {key: r for key, r in resources.items() if r["Type"] == resource_type}
