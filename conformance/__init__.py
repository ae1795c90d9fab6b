"""A black-box conformance suite for a running chat stack, local or deployed.

    python -m conformance --url http://127.0.0.1:8080                  # reads /config.json
    python -m conformance --stack ServerlessChat --region eu-west-1    # reads the stack's outputs
    python -m conformance --local                                      # starts a local stack for the run

It uses only what any client has: the configuration (``/config.json`` or the CloudFormation
outputs), Cognito's public sign-up and sign-in, the WebSocket URL with ``?token=``, and the frames of
the protocol (docs/protocol.md), over real sockets. It signs up three throwaway users named
``verify-<run>-a``/``-b``/``-c``, runs every check, prints ``PASS name`` or ``FAIL name: why`` per
check and ``N passed, M failed`` last, and deletes the users it created when it can.

Nothing here may depend on what only the local stack has: every check must hold on AWS, where
frames of other users arrive too, reads are eventually consistent and Lambdas start cold.
"""
