#!/usr/bin/env python3
"""The CDK app: one stack. Synthesizes with no AWS credentials and no Docker."""

import os

import aws_cdk as cdk

from infra import constants, nag
from infra.stack import ChatStack, context_flag

app = cdk.App()
# No account: the template works in any. The region stays a CloudFormation parameter unless given.
stack = ChatStack(app, constants.STACK_NAME, env=cdk.Environment(region=os.environ.get("CDK_DEFAULT_REGION")))
if context_flag(app, constants.NAG_CONTEXT_KEY, default=False):
    nag.check(app)  # an unsuppressed finding fails the synth
app.synth()
