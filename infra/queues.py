"""The one way this stack makes an SQS queue: encrypted with SQS-managed keys, refusing requests
without TLS (a queue policy), and deleted with the stack (it holds nothing a user keeps)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def private_queue(scope: Construct, construct_id: str, *, retention: Duration, **options: Any) -> sqs.Queue:
    """An SQS queue for this stack's own functions; ``options`` are ``sqs.Queue``'s other settings."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention,
        removal_policy=RemovalPolicy.DESTROY,
        **options,
    )
