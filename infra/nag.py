"""cdk-nag: the AwsSolutions checks, and the findings this design accepts, each with its reason.

Every suppression is attached to the resources it is about (never the whole stack) and, for the
IAM rules, to the exact policy or resource it excuses, so a new wildcard still fails the check.
"""

from __future__ import annotations

from typing import TypeVar

from aws_cdk import Aspects, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct, IConstruct

from infra.functions import FanoutFailures

T = TypeVar("T")

LAMBDA_BASIC_EXECUTION = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)
API_GATEWAY_PUSH_TO_LOGS = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)
# api.grant_manage_connections: this API's id, any stage, any method, any connection id.
MANAGE_CONNECTIONS_RESOURCE = RegexAppliesTo(
    regex=r"/^Resource::arn:<AWS::Partition>:execute-api:(<AWS::Region>|[a-z0-9-]+):<AWS::AccountId>:<[A-Za-z0-9]+>"
    r"\/\*\/\*\/@connections\/\*$/"
)

# aws_s3_deployment.BucketDeployment: its handler is a singleton function at the stack's root.
BUCKET_DEPLOYMENT_HANDLER_PREFIX = "Custom::CDKBucketDeployment"
# What CDK grants that handler: read the asset from the bootstrap bucket, write the site bucket.
BUCKET_DEPLOYMENT_WILDCARDS: tuple[str | RegexAppliesTo, ...] = (
    "Action::s3:GetBucket*",
    "Action::s3:GetObject*",
    "Action::s3:List*",
    "Action::s3:Abort*",
    "Action::s3:DeleteObject*",
    RegexAppliesTo(
        regex=r"/^Resource::arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>\/\*$/"
    ),
    RegexAppliesTo(regex=r"/^Resource::<WebClientBucket[0-9A-F]{8}\.Arn>\/\*$/"),
)


def check(scope: IConstruct) -> None:
    """Run the AwsSolutions pack over ``scope`` at synth; unsuppressed errors fail the synth."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=True))


def add_suppressions(stack: Stack) -> None:
    """Record the accepted findings on the resources they concern."""
    for function in _all(stack, lambda_.Function):
        if function.node.id.startswith(BUCKET_DEPLOYMENT_HANDLER_PREFIX):
            _suppress_deployment_handler_findings(function)
        else:
            _suppress_function_findings(function)
    for route in _all(stack, apigwv2.WebSocketRoute):
        if route.route_key != "$connect":
            _suppress(route, "AwsSolutions-APIG4", _UNAUTHORIZED_ROUTE)
    for pool in _all(stack, cognito.UserPool):
        _suppress(pool, "AwsSolutions-COG1", _LENGTH_OVER_COMPOSITION)
        _suppress(pool, "AwsSolutions-COG2", _NO_MFA)
        _suppress(pool, "AwsSolutions-COG8", _NO_PLUS_PLAN)
    for failures in _all(stack, FanoutFailures):
        _suppress(failures.queue, "AwsSolutions-SQS3", _QUEUE_IS_THE_DEAD_LETTER_QUEUE)
    for role in _all(stack, iam.Role):
        if role.node.id == "ApiGatewayLogsRole":
            _suppress(role, "AwsSolutions-IAM4", _API_GATEWAY_LOGS_POLICY, [API_GATEWAY_PUSH_TO_LOGS])
    for bucket in _all(stack, s3.Bucket):
        _suppress(bucket, "AwsSolutions-S1", _NO_BUCKET_ACCESS_LOGS)
    for distribution in _all(stack, cloudfront.Distribution):
        _suppress(distribution, "AwsSolutions-CFR1", _NO_GEO_RESTRICTION)
        _suppress(distribution, "AwsSolutions-CFR2", _NO_WAF)
        _suppress(distribution, "AwsSolutions-CFR3", _NO_DISTRIBUTION_ACCESS_LOGS)
        _suppress(distribution, "AwsSolutions-CFR4", _DEFAULT_CLOUDFRONT_CERTIFICATE)


def _suppress_function_findings(function: lambda_.Function) -> None:
    _suppress(function, "AwsSolutions-IAM4", _BASIC_EXECUTION, [LAMBDA_BASIC_EXECUTION])
    _suppress(function, "AwsSolutions-IAM5", _XRAY_WILDCARD, ["Resource::*"])
    _suppress(function, "AwsSolutions-IAM5", _CONNECTIONS_WILDCARD, [MANAGE_CONNECTIONS_RESOURCE])
    _suppress(function, "AwsSolutions-L1", _RUNTIME_CHOICE)


def _suppress_deployment_handler_findings(function: lambda_.Function) -> None:
    """BucketDeployment's own function (CDK's code): it copies the web client into its bucket."""
    _suppress(function, "AwsSolutions-IAM4", _DEPLOYMENT_BASIC_EXECUTION, [LAMBDA_BASIC_EXECUTION])
    _suppress(function, "AwsSolutions-IAM5", _DEPLOYMENT_S3_WILDCARDS, list(BUCKET_DEPLOYMENT_WILDCARDS))
    _suppress(function, "AwsSolutions-IAM5", _DEPLOYMENT_INVALIDATION, ["Resource::*"])
    _suppress(function, "AwsSolutions-L1", _DEPLOYMENT_RUNTIME)


def _suppress(
    construct: Construct,
    rule: str,
    reason: str,
    applies_to: list[str | RegexAppliesTo] | None = None,
) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)],
        apply_to_children=True,  # the role and its default policy sit under the function
    )


def _all(scope: Construct, kind: type[T]) -> list[T]:
    return [c for c in scope.node.find_all() if isinstance(c, kind)]


_BASIC_EXECUTION = (
    "AWSLambdaBasicExecutionRole only allows creating log streams and writing log events; it is "
    "the AWS-maintained minimum for a function to log, and each function has its own log group."
)
_XRAY_WILDCARD = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) do not support "
    "resource-level permissions, so their resource must be '*'. No other action uses '*'."
)
_CONNECTIONS_WILDCARD = (
    "execute-api:ManageConnections is scoped to this API; the stage, method and connection id are "
    "wildcards because connection ids are only known at run time, and posting to any open "
    "connection of this API is exactly what the chat does."
)
_RUNTIME_CHOICE = (
    "Python 3.13 is the runtime the code and its bundled packages are "
    "built and tested for; it is supported by Lambda until 2029. Moving to a newer runtime is a "
    "deliberate change made together with the packaging target, not a silent one."
)
_UNAUTHORIZED_ROUTE = (
    "WebSocket APIs run authorizers only on $connect. This route is reachable only over a "
    "connection the $connect authorizer admitted, and its handler reads the identity that "
    "authorizer bound to the connection."
)
_LENGTH_OVER_COMPOSITION = (
    "Length over composition (NIST SP 800-63B): at least 8 characters with a digit; no "
    "uppercase or symbol rules. Cognito's own protection against repeated failed sign-ins applies."
)
_NO_MFA = "A chat demo: MFA is optional for users and left off so anyone can sign up and chat at once."
_NO_PLUS_PLAN = (
    "Threat protection needs Cognito's Plus plan (billed per active user). The pool holds only a "
    "username and an optional e-mail address; the Lite plan keeps an idle stack free."
)
_API_GATEWAY_LOGS_POLICY = (
    "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy made for exactly this role: "
    "API Gateway's account-wide permission to write API logs to CloudWatch Logs."
)
_NO_BUCKET_ACCESS_LOGS = (
    "The web client's bucket holds only the page's public files and config.json, copied from the "
    "repository at deploy time; nobody but CloudFront (origin access control) can read it and only "
    "the deployment writes it, so S3 access logs would record nothing worth a second bucket."
)
_NO_GEO_RESTRICTION = "The chat is open to anyone who signs up, from any country."
_NO_WAF = (
    "The distribution serves four static files; the chat itself is the WebSocket API, which WAF "
    "does not cover here. A web ACL costs a fixed monthly fee an idle stack should not pay."
)
_NO_DISTRIBUTION_ACCESS_LOGS = (
    "Standard logs of four static files would need a log bucket and cost more than the page; the "
    "API's access log records every connection and message instead."
)
_DEFAULT_CLOUDFRONT_CERTIFICATE = (
    "The distribution uses CloudFront's default *.cloudfront.net certificate, whose TLS policy "
    "CloudFront sets and cannot be changed; choosing TLSv1.2_2021 requires a custom domain and "
    "certificate, which a user can add. Viewers are redirected to HTTPS and HSTS is sent."
)
_DEPLOYMENT_BASIC_EXECUTION = (
    "BucketDeployment's handler (CDK's own code) logs through AWSLambdaBasicExecutionRole, the "
    "AWS-maintained minimum for a function to write its logs."
)
_DEPLOYMENT_S3_WILDCARDS = (
    "CDK's BucketDeployment grants its handler read on the CDK asset bucket's objects and "
    "read/write/delete on the web client bucket's objects (object keys are the page's file names, "
    "known only at deploy time); no other bucket is reachable."
)
_DEPLOYMENT_INVALIDATION = (
    "The only actions on '*' are cloudfront:CreateInvalidation and cloudfront:GetInvalidation, "
    "which CDK's BucketDeployment grants so that a deploy refreshes the distribution's copies of "
    "the page's files."
)
_DEPLOYMENT_RUNTIME = (
    "BucketDeployment's handler runtime is chosen by aws-cdk-lib and moves with its version; "
    "it runs only during deployments."
)
_QUEUE_IS_THE_DEAD_LETTER_QUEUE = (
    "This queue is itself the dead-letter queue: the fan-out worker's on-failure destination, "
    "holding Lambda's records of events that failed every attempt. Nothing reads it to process "
    "messages, so there is nothing to redrive; an alarm fires when it holds any."
)
