"""Draw the demo's logo for Kabupaten Badung: a small PNG, made with zlib and struct only.

Usage: make_logo.py [OUTPUT]  (default: manifests/regions/assets/badung-logo.png)

A green disc in Badung's colour with a gold ring and a white "B": not the
region's real emblem, a stand-in the demo's profile gives its apps as their
``logo`` asset (``branding.logo: file:assets/badung-logo.png``).  The same
pixels give the same bytes, so running it again changes nothing.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZE = 96
GREEN = (0x0B, 0x6E, 0x4F, 0xFF)  # branding.primary_color
GOLD = (0xD4, 0xA0, 0x17, 0xFF)  # branding.secondary_color
WHITE = (0xFF, 0xFF, 0xFF, 0xFF)
CLEAR = (0, 0, 0, 0)
# A 5x7 "B", drawn at SCALE pixels a dot.
LETTER = ("1111.", "1...1", "1...1", "1111.", "1...1", "1...1", "1111.")
SCALE = 8
DEFAULT = Path(__file__).resolve().parent.parent / "manifests/regions/assets/badung-logo.png"


def pixel(x: int, y: int) -> tuple[int, int, int, int]:
    centre = (SIZE - 1) / 2
    distance = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
    if distance > SIZE / 2 - 1:
        return CLEAR
    if distance > SIZE / 2 - 7:
        return GOLD
    left = (SIZE - 5 * SCALE) // 2
    top = (SIZE - 7 * SCALE) // 2
    column, row = (x - left) // SCALE, (y - top) // SCALE
    if 0 <= column < 5 and 0 <= row < 7 and LETTER[row][column] == "1":
        return WHITE
    return GREEN


def chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png() -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(SIZE)) for y in range(SIZE)
    )
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(png())
    print(f"{output}: {output.stat().st_size} bytes, {SIZE}x{SIZE} PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
