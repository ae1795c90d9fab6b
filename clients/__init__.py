"""Clients of the chat protocol (``docs/protocol.md``): the web page and the ``chat`` command."""
