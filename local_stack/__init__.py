"""The local stack: the chat backend on a laptop, with nothing from AWS but its shapes.

``python -m local_stack`` (or ``make run``) starts, on 127.0.0.1:

- moto's server for DynamoDB and Cognito, with the tables and the user pool built from the same
  definitions as the CDK stack (``infra/schema.py``, ``infra/user_pool_rules.py``);
- an emulator of API Gateway's WebSocket side (``gateway.py``) that calls the very Lambda handlers
  named in ``infra/constants.py`` with events shaped like API Gateway's, plus the web client and
  ``/config.json`` on the same port;
- on a second port, the management API the handlers post to (``management.py``) and a Cognito
  endpoint for browsers that runs the pre-sign-up trigger as Cognito would (``cognito_proxy.py``);
- the inspector at ``/_local/`` on the first port (``inspector/``), and hot reload of the handlers
  when a file under ``functions/`` changes (``reload.py``), sockets kept open.

The pure parts (event shapes, how API Gateway reads a Lambda's answer, ids) are kept apart from
the sockets, as in websockets' Sans-I/O split: ``events.py``, ``answers.py``, ``ids.py``.
``testing.py`` runs the whole stack for tests.
"""

from pathlib import Path

# The checkout the stack serves files from (the web client, cdk.json); ``chat`` and ``infra`` are
# installed packages of the project (pyproject.toml), importable from anywhere.
REPO_ROOT = Path(__file__).resolve().parent.parent
