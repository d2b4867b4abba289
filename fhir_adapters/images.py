"""Inline image attachments of a record's DocumentReferences, capped in size and number."""

from __future__ import annotations

import base64
import binascii

from fhir.resources.R4B.documentreference import DocumentReference

from clinical_notes.attachments import ImageAttachment
from fhir_adapters.labels import is_ai_draft
from fhir_adapters.readers import iso, live, text_of
from fhir_adapters.record import PatientRecord

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def record_images(
    record: PatientRecord, max_bytes: int, max_count: int
) -> tuple[list[ImageAttachment], list[str]]:
    """The record's inline images (newest first, at most max_count of at most max_bytes each), and why
    each other image attachment was left out (ids and sizes only)."""
    found: list[ImageAttachment] = []
    skipped: list[str] = []
    documents = sorted(
        (d for d in live(record.resources.values(), DocumentReference) if not is_ai_draft(d)),
        key=lambda d: str(d.date or ""),
        reverse=True,
    )
    for doc in documents:
        ref = f"DocumentReference/{doc.id}"
        for content in doc.content or []:
            attachment = content.attachment
            kind = (attachment.contentType or "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                continue
            if kind not in IMAGE_TYPES:
                skipped.append(f"{ref}: {kind} is not an image type the model reads")
                continue
            if not attachment.data:
                skipped.append(f"{ref}: the image is not inline (a url is not fetched)")
                continue
            try:  # the FHIR models decode base64Binary to bytes; a str is still base64
                raw = attachment.data
                image = base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
            except (binascii.Error, ValueError):
                skipped.append(f"{ref}: the image data is not valid base64")
                continue
            size = len(image)
            if size > max_bytes:
                skipped.append(f"{ref}: image of {size} bytes, over the {max_bytes}-byte cap")
                continue
            if len(found) >= max_count:
                skipped.append(f"{ref}: over the {max_count}-image limit")
                continue
            label = text_of(doc.type) if doc.type else (doc.description or "Image")
            data = base64.b64encode(image).decode()
            found.append(ImageAttachment(ref, str(label), iso(doc.date), kind, data))
    return found, skipped
