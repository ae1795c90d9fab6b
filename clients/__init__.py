"""Clients of the chat protocol (``/work/shared/PROTOCOL.md``): the web page and the ``chat`` command."""
