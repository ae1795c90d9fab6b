"""Stack outputs: what a client needs to sign in and connect (the keys of the local /config.json)."""

from __future__ import annotations

from typing import Any

from infra import constants
from infra.stack import ChatStack
from tests.infra.conftest import logical_id


def test_outputs(chat_stack: ChatStack, template: Any) -> None:
    """WebSocketUrl is the stage's wss URL; Region, UserPoolId, UserPoolClientId, WebClientUrl exist."""
    outputs = template.to_json()["Outputs"]
    assert set(outputs) == {
        constants.OUTPUT_WEBSOCKET_URL,
        constants.OUTPUT_REGION,
        constants.OUTPUT_USER_POOL_ID,
        constants.OUTPUT_USER_POOL_CLIENT_ID,
        constants.OUTPUT_WEB_CLIENT_URL,
    }
    url = outputs[constants.OUTPUT_WEBSOCKET_URL]["Value"]["Fn::Join"][1]
    assert url[0] == "wss://"
    assert url[1] == {"Ref": logical_id(chat_stack.websocket.api)}
    assert url[-1].endswith(f"/{constants.STAGE_NAME}")
    assert outputs[constants.OUTPUT_REGION]["Value"] == {"Ref": "AWS::Region"}
    assert outputs[constants.OUTPUT_USER_POOL_ID]["Value"] == {
        "Ref": logical_id(chat_stack.identity.user_pool)
    }
    assert outputs[constants.OUTPUT_USER_POOL_CLIENT_ID]["Value"] == {
        "Ref": logical_id(chat_stack.identity.client)
    }
