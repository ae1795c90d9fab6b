"""The CDK app's stack and constructs, plus the pure data both the stack and the local stack use."""
