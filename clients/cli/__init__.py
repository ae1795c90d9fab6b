"""The ``chat`` command-line client.

Layers, outermost first:

- ``main``: arguments, configuration and password, then one of the modes below.
- ``interactive`` (a prompt_toolkit line editor) and ``batch`` (``send``, stdin, ``history``): the UI.
- ``session``: one reliable connection over asyncio — sign-in, reconnect with backoff, keepalive.
- ``protocol``: the rules of the protocol without any I/O — frames, cursor, deduplication, outbox.
- ``auth`` (Cognito) and ``config`` (``/config.json`` or CloudFormation outputs): the adapters.

``protocol``, ``session``, ``auth`` and ``config`` make a small library for scripts of your own.
"""
