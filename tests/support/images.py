"""Small real images for tests: a valid PNG of any size, and a DocumentReference carrying one inline."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any


def png(width: int = 8, height: int = 8) -> bytes:
    """A valid grey PNG of the given size."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes([128]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image_document(
    doc_id: str, patient_id: str, image: bytes, date: str = "2024-05-02T10:00:00Z"
) -> dict[str, Any]:
    """A DocumentReference holding one inline PNG (a wound photo)."""
    return {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": date,
        "type": {"text": "Wound photograph"},
        "content": [{"attachment": {"contentType": "image/png", "data": base64.b64encode(image).decode()}}],
    }
