"""The web client, hosted: a private S3 bucket behind CloudFront, and the stack's own config.json.

The bucket holds ``clients/web/`` exactly as the local stack serves it, plus a ``config.json``
written at deploy time from the stack's values, so the same page works locally and deployed with
no edit. Only CloudFront may read the bucket (origin access control); viewers get HTTPS only, with
the Content-Security-Policy of ``infra/web_policy.py`` and the usual security headers.

Caching: CloudFront keeps ``*.js`` and ``*.css`` for a day at least (a deploy invalidates them),
while ``/``, ``index.html``, ``config.json``, the icons, the web app manifest and the service worker
``sw.js`` (which browsers check for updates) are revalidated with the bucket on every request.
Browsers revalidate every object (``Cache-Control: no-cache``; a 304 costs almost nothing), since
the files keep their names from one version to the next.

Content types: the deployment's ``aws s3 sync`` names each object's type from its file name with
Python's ``mimetypes``, whose own table has every suffix the page uses (``WEB_CONTENT_TYPES``; a test
holds the two together), ``.webmanifest`` as ``application/manifest+json`` included.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra import web_policy
from infra.functions import LOG_RETENTION

WEB_ROOT = Path(__file__).resolve().parents[1] / "clients" / "web"
CONFIG_OBJECT = "config.json"
INDEX_OBJECT = "index.html"
# Files whose CloudFront copies may live long: every deploy invalidates the distribution.
ASSET_PATTERNS = ("*.js", "*.css")
# Served as documents although it matches *.js: browsers fetch the worker to see whether it changed.
SERVICE_WORKER_OBJECT = "sw.js"
# What each of the page's files may be served as (the bucket's Content-Type, from its suffix).
# Python 3.12 names .js text/javascript, older ones application/javascript: browsers take both
# for module scripts and service workers (both are JavaScript MIME types).
WEB_CONTENT_TYPES = {
    ".html": ("text/html",),
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".svg": ("image/svg+xml",),
    ".png": ("image/png",),
    ".webmanifest": ("application/manifest+json",),
}
ASSET_MIN_TTL = Duration.days(1)
ASSET_DEFAULT_TTL = Duration.days(7)
ASSET_MAX_TTL = Duration.days(365)
# The page and its configuration: the bucket's Cache-Control: no-cache applies (min TTL 0).
DOCUMENT_MAX_TTL = Duration.minutes(1)
HSTS_MAX_AGE = Duration.days(365)


def cognito_endpoint(region: str, url_suffix: str) -> str:
    """Cognito's JSON API for clients: ``https://cognito-idp.<region>.<url suffix>/``."""
    return f"https://cognito-idp.{region}.{url_suffix}/"


class ChatWebClient(Construct):
    """Bucket, distribution, headers and cache policies, and the deployment of the page's files."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        websocket_url: str,
        user_pool_id: str,
        user_pool_client_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.config = {
            "websocketUrl": websocket_url,
            "region": stack.region,
            "userPoolId": user_pool_id,
            "userPoolClientId": user_pool_client_id,
            "cognitoEndpoint": cognito_endpoint(stack.region, stack.url_suffix),
        }
        self.content_security_policy = web_policy.content_security_policy(
            websocket_url=websocket_url, cognito_endpoint=self.config["cognitoEndpoint"]
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            # Nothing a user cares about lives here: the files are redeployed from the repository.
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.distribution = self._distribution()
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.asset(str(WEB_ROOT)),
                s3deploy.Source.json_data(CONFIG_OBJECT, self.config),
            ],
            cache_control=[s3deploy.CacheControl.no_cache()],
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
            # Its logs expire like the chat's, and go with the stack.
            log_group=logs.LogGroup(
                self, "DeploymentLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
            ),
        )

    @property
    def url(self) -> str:
        """``https://<distribution domain>/``."""
        return f"https://{self.distribution.distribution_domain_name}/"

    def _distribution(self) -> cloudfront.Distribution:
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        headers = self._headers_policy()

        def behavior(cache_policy: cloudfront.ICachePolicy) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
                cache_policy=cache_policy,
                response_headers_policy=headers,
                compress=True,
            )

        assets = behavior(self._cache_policy("Assets", ASSET_MIN_TTL, ASSET_DEFAULT_TTL, ASSET_MAX_TTL))
        documents = behavior(
            self._cache_policy("Documents", Duration.seconds(0), Duration.seconds(0), DOCUMENT_MAX_TTL)
        )
        return cloudfront.Distribution(
            self,
            "Distribution",
            comment="Serverless chat web client",
            default_root_object=INDEX_OBJECT,
            # The default behaviour serves /, index.html, config.json, the icons and the manifest.
            default_behavior=documents,
            # In this order: CloudFront takes the first pattern that matches.
            additional_behaviors={
                SERVICE_WORKER_OBJECT: documents,
                **{pattern: assets for pattern in ASSET_PATTERNS},
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_ipv6=True,
        )

    def _cache_policy(
        self, name: str, min_ttl: Duration, default_ttl: Duration, max_ttl: Duration
    ) -> cloudfront.CachePolicy:
        return cloudfront.CachePolicy(
            self,
            f"{name}CachePolicy",
            comment=f"Serverless chat web client: {name.lower()}",
            min_ttl=min_ttl,
            default_ttl=default_ttl,
            max_ttl=max_ttl,
            # Nothing in a request changes what these files are.
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )

    def _headers_policy(self) -> cloudfront.ResponseHeadersPolicy:
        return cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Serverless chat web client: CSP, HSTS and friends",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self.content_security_policy, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
            ),
        )
