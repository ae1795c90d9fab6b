"""The hosted web client: a private bucket behind CloudFront, its headers, caching and config.json."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra import constants, web_client, web_policy
from infra.stack import ChatStack
from tests.infra.conftest import logical_id, of_type

WEB_CLIENT_TYPES = (
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::CloudFront::CachePolicy",
    "Custom::CDKBucketDeployment",
    "Custom::S3AutoDeleteObjects",
)


def _only(resources: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = of_type(resources, resource_type)
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))


def _distribution(resources: dict[str, Any]) -> dict[str, Any]:
    return _only(resources, "AWS::CloudFront::Distribution")[1]["Properties"]["DistributionConfig"]


def _policy_text(value: Any) -> str:
    """A CloudFormation string, tokens written as ``{Ref}``-like markers, for reading the CSP."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_policy_text(part) for part in parts)
    if "Ref" in value:
        return "{" + value["Ref"] + "}"
    raise AssertionError(f"unexpected CloudFormation value {value!r}")


def test_bucket_is_private_ssl_only_and_no_website(resources: dict[str, Any]) -> None:
    """Public access is blocked, no website hosting, and the policy denies every request without TLS."""
    bucket_id, bucket = _only(resources, "AWS::S3::Bucket")
    properties = bucket["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in properties
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    statements = _only(resources, "AWS::S3::BucketPolicy")[1]["Properties"]["PolicyDocument"]["Statement"]
    deny_plain_http = [
        s
        for s in statements
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert deny_plain_http and deny_plain_http[0]["Principal"] == {"AWS": "*"}
    # Anyone else may only be CloudFront, for this distribution, reading objects.
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    cloudfront_reads = [s for s in allowed if s["Principal"] == {"Service": "cloudfront.amazonaws.com"}]
    assert len(cloudfront_reads) == 1 and cloudfront_reads[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in cloudfront_reads[0]["Condition"]["StringEquals"]
    assert all(s["Principal"] != "*" and s["Principal"] != {"AWS": "*"} for s in allowed)
    assert bucket_id


def test_bucket_and_objects_go_with_the_stack(resources: dict[str, Any]) -> None:
    """make destroy removes the bucket (Delete policy) after emptying it (the auto-delete resource)."""
    bucket_id, bucket = _only(resources, "AWS::S3::Bucket")
    assert bucket["DeletionPolicy"] == "Delete" and bucket["UpdateReplacePolicy"] == "Delete"
    _, auto_delete = _only(resources, "Custom::S3AutoDeleteObjects")
    assert auto_delete["Properties"]["BucketName"] == {"Ref": bucket_id}


def test_distribution_reads_the_bucket_through_origin_access_control(resources: dict[str, Any]) -> None:
    """The origin is the bucket's REST endpoint, signed with SigV4 by an OAC; no OAI, no website endpoint."""
    oac_id, oac = _only(resources, "AWS::CloudFront::OriginAccessControl")
    config = oac["Properties"]["OriginAccessControlConfig"]
    assert config["OriginAccessControlOriginType"] == "s3"
    assert config["SigningBehavior"] == "always" and config["SigningProtocol"] == "sigv4"
    bucket_id, _ = _only(resources, "AWS::S3::Bucket")
    (origin,) = _distribution(resources)["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert "CustomOriginConfig" not in origin
    assert origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}


def test_distribution_is_https_only_http2_and_3_compressed(resources: dict[str, Any]) -> None:
    """Every behaviour redirects HTTP to HTTPS, compresses and allows only GET/HEAD; HTTP/2 and HTTP/3."""
    distribution = _distribution(resources)
    assert distribution["HttpVersion"] == "http2and3"
    assert distribution["DefaultRootObject"] == "index.html"
    assert distribution["Enabled"] is True
    behaviours = [distribution["DefaultCacheBehavior"], *distribution["CacheBehaviors"]]
    for behaviour in behaviours:
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["Compress"] is True
        assert behaviour["AllowedMethods"] == ["GET", "HEAD"]


def test_assets_cache_long_documents_and_config_do_not(resources: dict[str, Any]) -> None:
    """*.js and *.css stay a day or more at the edge; /, index.html and config.json are revalidated."""
    distribution = _distribution(resources)
    policies = {
        key: r["Properties"]["CachePolicyConfig"]
        for key, r in of_type(resources, "AWS::CloudFront::CachePolicy").items()
    }

    def policy_of(behaviour: dict[str, Any]) -> dict[str, Any]:
        return policies[behaviour["CachePolicyId"]["Ref"]]

    by_pattern = {b["PathPattern"]: policy_of(b) for b in distribution["CacheBehaviors"]}
    # The service worker first (CloudFront takes the first match), revalidated like the page.
    assert next(iter(by_pattern)) == web_client.SERVICE_WORKER_OBJECT
    worker = by_pattern.pop(web_client.SERVICE_WORKER_OBJECT)
    assert worker == policy_of(distribution["DefaultCacheBehavior"])
    assert set(by_pattern) == set(web_client.ASSET_PATTERNS)
    for policy in by_pattern.values():
        assert policy["MinTTL"] >= 86_400 and policy["DefaultTTL"] >= policy["MinTTL"]
    # index.html and config.json match no asset pattern: the default behaviour serves them.
    assert not any(pattern.endswith((".html", ".json")) for pattern in by_pattern)
    documents = policy_of(distribution["DefaultCacheBehavior"])
    assert documents["MinTTL"] == 0 and documents["DefaultTTL"] == 0 and documents["MaxTTL"] <= 300
    for policy in [*by_pattern.values(), documents]:
        key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
        assert key["EnableAcceptEncodingGzip"] and key["EnableAcceptEncodingBrotli"]
        assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}


def test_headers_policy_sets_the_csp_and_security_headers(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """CSP (own scripts only, connect only to the stack's wss URL and Cognito, no framing), HSTS, nosniff."""
    headers_id, headers = _only(resources, "AWS::CloudFront::ResponseHeadersPolicy")
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    policy = web_policy.directives(_policy_text(security["ContentSecurityPolicy"]["ContentSecurityPolicy"]))
    api = logical_id(chat_stack.websocket.api)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == [
        "'self'",
        f"wss://{{{api}}}.execute-api.{{AWS::Region}}.{{AWS::URLSuffix}}/{constants.STAGE_NAME}",
        "https://cognito-idp.{AWS::Region}.{AWS::URLSuffix}/",
    ]
    assert policy["frame-ancestors"] == ["'none'"]
    # The installable app: its manifest and its service worker, from the page's own origin only.
    assert policy["manifest-src"] == ["'self'"] and policy["worker-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    assert not [s for sources in policy.values() for s in sources if "*" in s or "unsafe" in s]
    assert security["ContentSecurityPolicy"]["Override"] is True
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert security["StrictTransportSecurity"]["IncludeSubdomains"] is True
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert security["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    distribution = _distribution(resources)
    for behaviour in [distribution["DefaultCacheBehavior"], *distribution["CacheBehaviors"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": headers_id}


def test_config_json_is_written_from_the_stack_values(chat_stack: ChatStack, template: Template) -> None:
    """The deployment copies clients/web and a config.json of the stack's own tokens, then invalidates."""
    assert chat_stack.web_client is not None
    config = chat_stack.resolve(chat_stack.web_client.config)
    assert set(config) == {"websocketUrl", "region", "userPoolId", "userPoolClientId", "cognitoEndpoint"}
    assert config["region"] == {"Ref": "AWS::Region"}
    assert config["userPoolId"] == {"Ref": logical_id(chat_stack.identity.user_pool)}
    assert config["userPoolClientId"] == {"Ref": logical_id(chat_stack.identity.client)}
    assert config["websocketUrl"] == chat_stack.resolve(chat_stack.websocket.url)
    assert _policy_text(config["cognitoEndpoint"]) == "https://cognito-idp.{AWS::Region}.{AWS::URLSuffix}/"
    resources = template.to_json()["Resources"]
    bucket_id, _ = _only(resources, "AWS::S3::Bucket")
    distribution_id, _ = _only(resources, "AWS::CloudFront::Distribution")
    _, deployment = _only(resources, "Custom::CDKBucketDeployment")
    properties = deployment["Properties"]
    assert properties["DestinationBucketName"] == {"Ref": bucket_id}
    assert properties["DistributionId"] == {"Ref": distribution_id}
    assert properties["DistributionPaths"] == ["/*"]
    assert properties["Prune"] is True
    assert properties["SystemMetadata"] == {"cache-control": "no-cache"}
    assert len(properties["SourceObjectKeys"]) == 2  # clients/web and config.json
    markers = properties["SourceMarkers"][1]
    assert sorted(_policy_text(v) for v in markers.values()) == sorted(
        f'"{_policy_text(v)}"' for v in config.values()
    )


def test_deployed_files_are_plain_file_assets_no_docker(chat_stack: ChatStack, template: Template) -> None:
    """The deployment's two sources are the files of clients/web and a config.json; no asset is a
    Docker image (the Lambda code is zipped by pip, the page's files as they are)."""
    assembly = cdk.Stage.of(chat_stack).synth()  # type: ignore[union-attr]
    manifest = json.loads(Path(assembly.directory, f"{chat_stack.artifact_id}.assets.json").read_text())
    assert manifest.get("dockerImages", {}) == {}
    assert {asset["source"]["packaging"] for asset in manifest["files"].values()} <= {"zip", "file"}
    _, deployment = _only(template.to_json()["Resources"], "Custom::CDKBucketDeployment")
    staged = [
        Path(assembly.directory, f"asset.{key.removesuffix('.zip')}")
        for key in deployment["Properties"]["SourceObjectKeys"]
    ]
    web_files = {path.name for path in web_client.WEB_ROOT.iterdir() if path.is_file()}
    assert {path.name for path in staged[0].iterdir()} == web_files
    assert {path.name for path in staged[1].iterdir()} == {web_client.CONFIG_OBJECT}
    assert "index.html" in web_files and web_client.CONFIG_OBJECT not in web_files


def test_every_web_file_gets_its_content_type_from_the_deployment(chat_stack: ChatStack) -> None:
    """The deployment's sync types objects with Python's own mimetypes table: it knows every suffix
    of clients/web (the manifest's application/manifest+json included), as WEB_CONTENT_TYPES says."""
    builtin = mimetypes.MimeTypes(filenames=())  # the table alone, no /etc/mime.types
    suffixes = {path.suffix for path in web_client.WEB_ROOT.iterdir() if path.is_file()}
    assert suffixes <= set(web_client.WEB_CONTENT_TYPES), suffixes
    for suffix in suffixes:
        assert builtin.guess_type(f"file{suffix}")[0] in web_client.WEB_CONTENT_TYPES[suffix]
    assert {"manifest.webmanifest", "sw.js", "icon.svg", "icon-192.png", "icon-512.png"} <= {
        path.name for path in web_client.WEB_ROOT.iterdir()
    }


def test_web_client_url_output(chat_stack: ChatStack, template: Template) -> None:
    """WebClientUrl is https://<distribution domain>/."""
    outputs = template.to_json()["Outputs"]
    distribution = logical_id(chat_stack.web_client.distribution)  # type: ignore[union-attr]
    assert outputs[constants.OUTPUT_WEB_CLIENT_URL]["Value"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}, "/"]]
    }


def test_web_client_false_leaves_hosting_out(no_web_client_template: Template) -> None:
    """-c webClient=false: no bucket, distribution, policies or deployment, and no WebClientUrl output."""
    resources = no_web_client_template.to_json()["Resources"]
    for resource_type in WEB_CLIENT_TYPES:
        assert of_type(resources, resource_type) == {}, resource_type
    assert not [key for key in resources if key.startswith("CustomCDKBucketDeployment")]
    outputs = no_web_client_template.to_json()["Outputs"]
    assert constants.OUTPUT_WEB_CLIENT_URL not in outputs
    assert constants.OUTPUT_WEBSOCKET_URL in outputs
