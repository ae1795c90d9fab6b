"""Reading ``-X importtime``: the handler's own line, and its heaviest imports only from its own tree."""

from __future__ import annotations

from benchmarks.cold_start import parse_importtime

# As an interpreter prints it after the runtime's imports: json's tree, then the handler's.
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:      1000 |       1000 |     re
import time:     30000 |      31000 |   json.decoder
import time:       500 |      31500 | json
import time:       200 |        200 |   chat.handlers
import time:     25000 |      25000 |     h11
import time:      1000 |      26000 |   chat.token_verifier
import time:      1500 |      27700 | chat.handlers.authorizer
"""


def test_handler_line_is_its_cumulative_time() -> None:
    """The figure is the handler's own cumulative line, not the runtime's imports before it."""
    assert parse_importtime("authorizer", IMPORTTIME).total_ms == 27.7


def test_heaviest_imports_are_the_handlers_own() -> None:
    """json.decoder (the runtime's) is heavier than the threshold yet not listed; the handler's are."""
    heaviest = parse_importtime("authorizer", IMPORTTIME).heaviest
    assert heaviest == [("chat.token_verifier", 26.0), ("h11", 25.0)]


def test_whole_process_sums_every_top_level_line() -> None:
    """The whole-process figure counts json and the handler alike."""
    assert parse_importtime("authorizer", IMPORTTIME).process_ms == 59.2
