"""Cognito: the user pool, the app client, the pre-sign-up trigger and the e-mail verification variant."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template
from chat import config

from infra import constants, user_pool_rules
from infra.stack import ChatStack
from tests.infra.conftest import logical_id, of_type


def _pool(template: Template) -> dict[str, Any]:
    return next(iter(of_type(template.to_json()["Resources"], "AWS::Cognito::UserPool").values()))


def test_pool_signs_in_by_case_insensitive_username(template: Template) -> None:
    """Users sign up themselves and sign in by a username compared case-insensitively."""
    pool = _pool(template)["Properties"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False
    assert "UsernameAttributes" not in pool and "AliasAttributes" not in pool


def test_password_policy_comes_from_identity_rules(template: Template) -> None:
    """The password policy is the one in infra/user_pool_rules.py, shared with the local stack."""
    policy = _pool(template)["Properties"]["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == user_pool_rules.PASSWORD_MIN_LENGTH
    assert policy["RequireLowercase"] == user_pool_rules.PASSWORD_REQUIRE["lowercase"]
    assert policy["RequireUppercase"] == user_pool_rules.PASSWORD_REQUIRE["uppercase"]
    assert policy["RequireNumbers"] == user_pool_rules.PASSWORD_REQUIRE["digits"]
    assert policy["RequireSymbols"] == user_pool_rules.PASSWORD_REQUIRE["symbols"]


def test_account_recovery_by_verified_email(template: Template) -> None:
    """A user who verified an e-mail address can recover a forgotten password with it."""
    pool = _pool(template)["Properties"]
    assert pool["AccountRecoverySetting"] == {
        "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]
    }
    assert pool["AutoVerifiedAttributes"] == ["email"]


def test_app_client_for_public_clients(template: Template) -> None:
    """No secret; password and SRP sign-in plus refresh; token lifetimes from infra/user_pool_rules.py."""
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": False,
            "ExplicitAuthFlows": Match.array_with(list(user_pool_rules.AUTH_FLOWS)),
            "PreventUserExistenceErrors": "ENABLED",
            "AccessTokenValidity": user_pool_rules.ACCESS_TOKEN_MINUTES,
            "IdTokenValidity": user_pool_rules.ID_TOKEN_MINUTES,
            "RefreshTokenValidity": user_pool_rules.REFRESH_TOKEN_DAYS * 24 * 60,
            "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"},
            "AllowedOAuthFlows": Match.absent(),
        },
    )
    client = next(iter(of_type(template.to_json()["Resources"], "AWS::Cognito::UserPoolClient").values()))
    assert sorted(client["Properties"]["ExplicitAuthFlows"]) == sorted(user_pool_rules.AUTH_FLOWS)


def test_pre_sign_up_trigger_auto_confirms_by_default(chat_stack: ChatStack, template: Template) -> None:
    """The trigger is wired to the pool, told to auto-confirm, and e-mail is optional."""
    trigger = chat_stack.identity.pre_sign_up
    pool = _pool(template)["Properties"]
    assert pool["LambdaConfig"] == {"PreSignUp": {"Fn::GetAtt": [logical_id(trigger), "Arn"]}}
    assert {"Name": "email", "Required": False, "Mutable": True} in pool["Schema"]
    properties = template.to_json()["Resources"][logical_id(trigger)]["Properties"]
    assert properties["Handler"] == constants.PRESIGNUP_HANDLER
    assert properties["Environment"]["Variables"][config.AUTO_CONFIRM] == "true"
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Principal": "cognito-idp.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [logical_id(trigger), "Arn"]},
        },
    )


def test_without_auto_confirm_email_is_required(
    verify_email_stack: ChatStack, verify_email_template: Template
) -> None:
    """`-c autoConfirmSignUp=false`: e-mail required and verified; the trigger still checks usernames only."""
    pool = _pool(verify_email_template)["Properties"]
    assert {"Name": "email", "Required": True, "Mutable": True} in pool["Schema"]
    assert pool["AutoVerifiedAttributes"] == ["email"]
    trigger = verify_email_template.to_json()["Resources"][
        logical_id(verify_email_stack.identity.pre_sign_up)
    ]
    assert trigger["Properties"]["Environment"]["Variables"][config.AUTO_CONFIRM] == "false"


def test_user_pool_is_retained_by_default(template: Template) -> None:
    """Accounts are user data: deleting the stack keeps the pool unless retainData=false."""
    assert _pool(template)["DeletionPolicy"] == "Retain"
