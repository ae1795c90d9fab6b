"""``python -m infra.web_icons``: draw the web client's PNG icons (no network, no image library).

The PNGs are the same picture as ``clients/web/icon.svg``: a white speech bubble on the page's
accent blue, filling the whole square so that a launcher may cut it to any shape ("maskable").
Each pixel is the share of its 4 by 4 sub-samples inside the bubble, so the edges are smooth.
``--check`` fails when the committed files differ from what this draws.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parents[1] / "clients" / "web"
SIZES = (192, 512)
BACKGROUND = (0x25, 0x57, 0xC7)
FOREGROUND = (0xFF, 0xFF, 0xFF)
SUBSAMPLES = 4


def inside_bubble(x: float, y: float) -> bool:
    """The bubble in a unit square: an ellipse and a tail towards the lower left."""
    ellipse = ((x - 0.5) / 0.32) ** 2 + ((y - 0.45) / 0.24) ** 2 <= 1.0
    # The tail: a triangle with corners (0.3, 0.6), (0.45, 0.66), (0.24, 0.8).
    (ax, ay), (bx, by), (cx, cy) = (0.3, 0.6), (0.46, 0.66), (0.24, 0.8)

    def side(px: float, py: float, qx: float, qy: float) -> float:
        return (x - qx) * (py - qy) - (px - qx) * (y - qy)

    d1, d2, d3 = side(ax, ay, bx, by), side(bx, by, cx, cy), side(cx, cy, ax, ay)
    tail = not ((d1 < 0 or d2 < 0 or d3 < 0) and (d1 > 0 or d2 > 0 or d3 > 0))
    return ellipse or tail


def pixels(size: int) -> bytes:
    """Raw RGB scanlines, each behind PNG's filter byte 0."""
    rows = bytearray()
    step = 1.0 / (size * SUBSAMPLES)
    for row in range(size):
        rows.append(0)
        for column in range(size):
            hits = sum(
                inside_bubble((column * SUBSAMPLES + i + 0.5) * step, (row * SUBSAMPLES + j + 0.5) * step)
                for i in range(SUBSAMPLES)
                for j in range(SUBSAMPLES)
            )
            share = hits / SUBSAMPLES**2
            rows += bytes(round(b + (f - b) * share) for b, f in zip(BACKGROUND, FOREGROUND, strict=True))
    return bytes(rows)


def png(size: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels(size), 9))
        + chunk(b"IEND", b"")
    )


def icon_path(size: int) -> Path:
    return WEB_ROOT / f"icon-{size}.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed icons differ")
    check = parser.parse_args(argv).check
    stale = []
    for size in SIZES:
        drawn = png(size)
        path = icon_path(size)
        if check:
            if not path.is_file() or path.read_bytes() != drawn:
                stale.append(path.name)
        else:
            path.write_bytes(drawn)
    if stale:
        print(f"out of date: {', '.join(stale)} (run python -m infra.web_icons)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
