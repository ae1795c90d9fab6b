"""The web client's PNG icons are what ``python -m infra.web_icons`` draws, at the manifest's sizes."""

from __future__ import annotations

import json
import struct

from infra import web_icons


def test_the_committed_small_icon_is_what_the_script_draws() -> None:
    """Re-drawing the 192 px icon gives the committed file byte for byte (no hand-edited or stale PNG)."""
    assert web_icons.png(192) == web_icons.icon_path(192).read_bytes()


def test_every_png_the_manifest_names_has_its_stated_size() -> None:
    """Each PNG icon in manifest.webmanifest is a PNG whose header says the size the manifest says."""
    manifest = json.loads((web_icons.WEB_ROOT / "manifest.webmanifest").read_text())
    pngs = [icon for icon in manifest["icons"] if icon["type"] == "image/png"]
    assert {icon["sizes"] for icon in pngs} == {f"{size}x{size}" for size in web_icons.SIZES}
    for icon in pngs:
        data = (web_icons.WEB_ROOT / icon["src"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert f"{width}x{height}" == icon["sizes"]
