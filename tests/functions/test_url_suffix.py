"""Host names built at run time end in the partition's DNS suffix (amazonaws.com.cn in China)."""

from __future__ import annotations

from chat import config
from chat.notifier import management_endpoint
from chat.token_verifier import VerifierSettings


def test_suffix_comes_from_the_environment_the_stack_sets() -> None:
    """AWS_URL_SUFFIX (set from AWS::URLSuffix) wins over anything derived from the region."""
    assert config.url_suffix("eu-west-1", {config.AWS_URL_SUFFIX: "example.test"}) == "example.test"


def test_suffix_without_the_variable_follows_the_region() -> None:
    """China's regions get amazonaws.com.cn, every other region amazonaws.com; blank counts as unset."""
    assert config.url_suffix("cn-north-1", {}) == "amazonaws.com.cn"
    assert config.url_suffix("cn-northwest-1", {config.AWS_URL_SUFFIX: "  "}) == "amazonaws.com.cn"
    assert config.url_suffix("eu-west-1", {}) == "amazonaws.com"
    assert config.url_suffix("us-gov-west-1", {}) == "amazonaws.com"


def test_management_endpoint_in_china(monkeypatch) -> None:
    """The management API host of an API in cn-north-1 ends in amazonaws.com.cn."""
    monkeypatch.delenv(config.AWS_URL_SUFFIX, raising=False)
    assert management_endpoint(api_id="abc123", region="cn-north-1", stage="prod") == (
        "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod"
    )


def test_management_endpoint_uses_the_configured_suffix(monkeypatch) -> None:
    """With AWS_URL_SUFFIX set (as on Lambda), or given explicitly, that suffix is used."""
    monkeypatch.setenv(config.AWS_URL_SUFFIX, "amazonaws.com.cn")
    assert management_endpoint(api_id="abc123", region="cn-northwest-1", stage="prod") == (
        "https://abc123.execute-api.cn-northwest-1.amazonaws.com.cn/prod"
    )
    assert management_endpoint(
        api_id="abc123", region="eu-west-1", stage="prod", url_suffix="amazonaws.com"
    ) == ("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")


def test_cognito_issuer_and_keys_in_china() -> None:
    """Without TOKEN_ISSUER, a China pool's issuer and JWKS URL end in amazonaws.com.cn."""
    settings = VerifierSettings.from_env(
        {config.USER_POOL_ID: "cn-north-1_AbCdEf", config.USER_POOL_CLIENT_ID: "client"}
    )
    assert settings.issuer == "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_AbCdEf"
    assert settings.jwks_url == f"{settings.issuer}/.well-known/jwks.json"


def test_cognito_issuer_follows_the_configured_suffix() -> None:
    """AWS_URL_SUFFIX applies to the issuer the authorizer derives, too."""
    settings = VerifierSettings.from_env(
        {
            config.USER_POOL_ID: "eu-west-1_AbCdEf",
            config.USER_POOL_CLIENT_ID: "client",
            config.AWS_URL_SUFFIX: "amazonaws.com",
        }
    )
    assert settings.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf"
