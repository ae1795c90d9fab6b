"""cdk-nag: the AwsSolutions checks, and the findings this design accepts, each with its reason.

Every suppression is attached to the resources it is about (never the whole stack) and, for the
IAM rules, to the exact policy or resource it excuses, so a new wildcard still fails the check.
"""

from __future__ import annotations

from typing import TypeVar

from aws_cdk import Aspects, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
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


def check(scope: IConstruct) -> None:
    """Run the AwsSolutions pack over ``scope`` at synth; unsuppressed errors fail the synth."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=True))


def add_suppressions(stack: Stack) -> None:
    """Record the accepted findings on the resources they concern."""
    for function in _all(stack, lambda_.Function):
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


def _suppress_function_findings(function: lambda_.Function) -> None:
    _suppress(function, "AwsSolutions-IAM4", _BASIC_EXECUTION, [LAMBDA_BASIC_EXECUTION])
    _suppress(function, "AwsSolutions-IAM5", _XRAY_WILDCARD, ["Resource::*"])
    _suppress(function, "AwsSolutions-IAM5", _CONNECTIONS_WILDCARD, [MANAGE_CONNECTIONS_RESOURCE])
    _suppress(function, "AwsSolutions-L1", _RUNTIME_CHOICE)


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
    "Python 3.13 is the runtime the code and its bundled native wheels (cffi, cryptography) are "
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
_QUEUE_IS_THE_DEAD_LETTER_QUEUE = (
    "This queue is itself the dead-letter queue: the fan-out worker's on-failure destination, "
    "holding Lambda's records of events that failed every attempt. Nothing reads it to process "
    "messages, so there is nothing to redrive; an alarm fires when it holds any."
)
