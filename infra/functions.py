"""The Lambda functions: one per WebSocket route, plus the $connect authorizer.

All share one code asset (``infra/packaging.py``) and differ only in handler, memory and timeout.
What each may touch is decided in ``infra/permissions.py``, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from chat import config
from constructs import Construct

from infra import constants, presence, queues, sizing

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# Sizes and retries are plain data in infra/sizing.py, shared with the local stack.
FANOUT_WORKER_TIMEOUT = Duration.seconds(sizing.FANOUT_WORKER_TIMEOUT_S)
FANOUT_WORKER_MAX_EVENT_AGE = Duration.seconds(sizing.FANOUT_WORKER_MAX_EVENT_AGE_S)
# What the on-failure queue keeps: SQS's longest, time to look at what went wrong.
FANOUT_FAILURE_RETENTION = Duration.days(14)
ROUTE_TIMEOUT = Duration.seconds(sizing.ROUTE_TIMEOUT_S)
AUTHORIZER_TIMEOUT = Duration.seconds(sizing.AUTHORIZER_TIMEOUT_S)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def chat_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str,
    environment: Mapping[str, str],
    timeout: Duration = ROUTE_TIMEOUT,
    memory_mb: int = sizing.DEFAULT_MEMORY_MB,
) -> lambda_.Function:
    """One function of the chat: arm64, Python 3.13, X-Ray active tracing, its own log group."""
    # An explicit log group (rather than Lambda's implicit one) gets a retention period and is
    # deleted with the stack.
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=LOG_RETENTION,
        removal_policy=RemovalPolicy.DESTROY,
    )
    return lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=code,
        handler=handler,
        memory_size=memory_mb,
        timeout=timeout,
        environment=dict(environment),
        # Lambda records each sampled invocation's segments itself; the code carries no tracing SDK.
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
    )


class ChatFunctions(Construct):
    """The route functions (by ``constants.Route.function_id``), the authorizer, the fan-out worker
    and the presence-check worker."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._code = code
        # Created first: the route functions hand it large fan-outs by name.
        self.fanout_worker = self._function(
            "FanoutWorker",
            constants.FANOUT_WORKER_HANDLER,
            environment,
            timeout=FANOUT_WORKER_TIMEOUT,
            memory_mb=sizing.FANOUT_WORKER_MEMORY_MB,
        )
        self.fanout_failures = FanoutFailures(self, "FanoutFailures")
        self.fanout_worker.configure_async_invoke(
            retry_attempts=sizing.FANOUT_WORKER_RETRY_ATTEMPTS,
            max_event_age=FANOUT_WORKER_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.fanout_failures.queue),
        )
        route_environment = {**environment, config.FANOUT_FUNCTION_NAME: self.fanout_worker.function_name}
        # Reads the presence grace's delayed checks from SQS (infra/presence.py).
        self.presence_check = self._function(
            "PresenceCheck",
            constants.PRESENCE_CHECK_HANDLER,
            route_environment,
            timeout=presence.WORKER_TIMEOUT,
        )
        self.routes: dict[str, lambda_.Function] = {
            route.function_id: self._function(
                route.function_id,
                route.handler,
                route_environment,
                memory_mb=sizing.route_memory_mb(route.function_id),
            )
            for route in constants.ROUTES
        }
        # Same environment as the routes: it reads the pool id, client id and token issuer.
        self.authorizer = self._function(
            "Authorizer", constants.AUTHORIZER_HANDLER, environment, timeout=AUTHORIZER_TIMEOUT
        )

    def _function(
        self, name: str, handler: str, environment: Mapping[str, str], **sizes: Any
    ) -> lambda_.Function:
        """One of the chat's functions in this construct, with the shared code asset."""
        # "<name>Function": "Default" alone would make CDK treat it as this construct's default child.
        return chat_function(
            self, f"{name}Function", code=self._code, handler=handler, environment=environment, **sizes
        )

    def for_route(self, route_key: str) -> lambda_.Function:
        """The function behind a route key such as ``$connect`` or ``sendmessage``."""
        return self.routes[constants.ROUTE_BY_KEY[route_key].function_id]


class FanoutFailures(Construct):
    """Where a fan-out worker event goes when it has failed every attempt or grown too old: an SQS
    queue holding Lambda's invocation record (the event, the error), and an alarm when it holds any.

    Nothing consumes the queue: a record means some recipients missed one live frame (they get the
    message from ``sync``), so it is something to look at, not to replay.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queue = queues.private_queue(self, "Queue", retention=FANOUT_FAILURE_RETENTION)
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            alarm_description=(
                "A fan-out worker event failed every attempt: some connections missed a live frame "
                "(clients get messages from sync). Lambda's records of it are in the queue."
            ),
            metric=self.queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
