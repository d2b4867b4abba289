"""Inline image attachments of a record's DocumentReferences and Media, capped in size and number."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.media import Media

from clinical_notes.attachments import ImageAttachment
from fhir_adapters.labels import is_ai_draft
from fhir_adapters.readers import iso, live, text_of
from fhir_adapters.record import PatientRecord

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _sources(record: PatientRecord) -> list[tuple[str, str, str | None, list[Attachment]]]:
    """(reference, label, date, attachments) of every document and media item, newest first."""
    found: list[tuple[str, str, str | None, list[Attachment]]] = []
    for doc in live(record.resources.values(), DocumentReference):
        if not is_ai_draft(doc):
            label = text_of(doc.type) if doc.type else (doc.description or "Image")
            found.append(
                (
                    f"DocumentReference/{doc.id}",
                    str(label),
                    iso(doc.date),
                    [c.attachment for c in doc.content or []],
                )
            )
    for media in live(record.resources.values(), Media):
        concept = media.modality or media.type or media.view
        label = text_of(concept) if concept else (media.content.title or "Image")
        when = iso(media.createdDateTime or media.issued)
        found.append((f"Media/{media.id}", str(label), when, [media.content]))
    return sorted(found, key=lambda source: str(source[2] or ""), reverse=True)


def _image_attachments(record: PatientRecord) -> Iterator[tuple[str, str, str | None, Attachment]]:
    for ref, label, when, attachments in _sources(record):
        for attachment in attachments:
            yield ref, label, when, attachment


def record_images(
    record: PatientRecord, max_bytes: int, max_count: int
) -> tuple[list[ImageAttachment], list[str]]:
    """The record's inline images (newest first, at most max_count of at most max_bytes each), and why
    each other image attachment was left out (ids and sizes only)."""
    found: list[ImageAttachment] = []
    skipped: list[str] = []
    for ref, label, when, attachment in _image_attachments(record):
        content_type = (attachment.contentType or "").split(";")[0].strip().lower()
        if not content_type.startswith("image/"):
            continue
        if content_type not in IMAGE_TYPES:
            skipped.append(f"{ref}: {content_type} is not an image type the model reads")
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
        found.append(ImageAttachment(ref, label, when, content_type, base64.b64encode(image).decode()))
    return found, skipped
