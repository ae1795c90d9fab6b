"""Sign-up and sign-in: the Cognito user pool, its app client and the pre-sign-up trigger.

The rules (password policy, token lifetimes, auth flows) are plain data in ``infra/user_pool_rules.py``,
shared with the local stack.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from chat import config
from constructs import Construct

from infra import constants, user_pool_rules
from infra.functions import chat_function


class ChatUserPool(Construct):
    """A user pool where people pick a username, and the app client the chat clients use.

    With ``auto_confirm`` (the default) the pre-sign-up trigger confirms new users at once, so a
    newcomer signs up and chats; e-mail is optional. Without it, e-mail is required and must be
    verified before signing in. The trigger runs in both modes because it also enforces the
    username rule (3 to 32 of ``a-z 0-9 _ . -``), which Cognito itself cannot express.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        auto_confirm: bool,
        retain_data: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.pre_sign_up = chat_function(
            self,
            "PreSignUp",
            code=code,
            handler=constants.PRESIGNUP_HANDLER,
            environment={
                config.AUTO_CONFIRM: "true" if auto_confirm else "false",
                "POWERTOOLS_SERVICE_NAME": "chat-signup",
            },
        )
        self.user_pool = self._user_pool(auto_confirm=auto_confirm, retain_data=retain_data)
        self.client = self._app_client()

    def _user_pool(self, *, auto_confirm: bool, retain_data: bool) -> cognito.UserPool:
        return cognito.UserPool(
            self,
            "UserPool",
            sign_in_aliases=cognito.SignInAliases(username=True),
            sign_in_case_sensitive=False,
            self_sign_up_enabled=True,
            # Without auto-confirmation the e-mail address is how an account gets confirmed.
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=not auto_confirm, mutable=True)
            ),
            # Users who give an address can verify it and recover their password with it.
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=user_pool_rules.PASSWORD_MIN_LENGTH,
                require_lowercase=user_pool_rules.PASSWORD_REQUIRE["lowercase"],
                require_uppercase=user_pool_rules.PASSWORD_REQUIRE["uppercase"],
                require_digits=user_pool_rules.PASSWORD_REQUIRE["digits"],
                require_symbols=user_pool_rules.PASSWORD_REQUIRE["symbols"],
            ),
            lambda_triggers=cognito.UserPoolTriggers(pre_sign_up=self.pre_sign_up),
            # Lite covers username/password sign-in; the pricier plans add nothing this chat uses.
            feature_plan=cognito.FeaturePlan.LITE,
            # Accounts are user data: kept on `cdk destroy` unless retainData=false.
            removal_policy=RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY,
        )

    def _app_client(self) -> cognito.UserPoolClient:
        flows = set(user_pool_rules.AUTH_FLOWS)
        return self.user_pool.add_client(
            "AppClient",
            # Browser, mobile and CLI clients cannot keep a secret.
            generate_secret=False,
            # Sign-in is through Cognito's API with username and password; no hosted UI/OAuth.
            disable_o_auth=True,
            auth_flows=cognito.AuthFlow(
                user_password="ALLOW_USER_PASSWORD_AUTH" in flows,
                user_srp="ALLOW_USER_SRP_AUTH" in flows,
            ),
            access_token_validity=Duration.minutes(user_pool_rules.ACCESS_TOKEN_MINUTES),
            id_token_validity=Duration.minutes(user_pool_rules.ID_TOKEN_MINUTES),
            refresh_token_validity=Duration.days(user_pool_rules.REFRESH_TOKEN_DAYS),
            enable_token_revocation=True,
            # Sign-in failures do not reveal whether a username exists.
            prevent_user_existence_errors=True,
        )
