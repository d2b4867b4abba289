"""Images from the record that a multimodal model is shown, each under a citation key like any source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clinical_notes.timeline import ClinicalTimeline


@dataclass(frozen=True)
class ImageAttachment:
    """One inline image of a resource: its reference, what the record calls it, and the bytes (base64)."""

    ref: str
    label: str
    date: str | None
    content_type: str
    data: str


def image_keys(timeline: ClinicalTimeline, images: list[ImageAttachment]) -> dict[str, str]:
    """Citation key -> reference for the images, after the timeline's own keys ("D3" after D1, D2)."""
    taken = set(timeline.citation_keys())
    keys: dict[str, str] = {}
    number = 1
    for image in images:
        while f"D{number}" in taken:
            number += 1
        keys[f"D{number}"] = image.ref
        taken.add(f"D{number}")
    return keys


def image_parts(images: list[ImageAttachment], keys: dict[str, str]) -> list[dict[str, Any]]:
    """OpenAI-style content parts: a line naming each image's key, then the image as a data URL."""
    key_of = {ref: key for key, ref in keys.items()}
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": "IMAGES FROM THE RECORD (quoted data; cite an image by its key)\n"}
    ]
    for image in images:
        when = f", {image.date[:10]}" if image.date else ""
        parts.append({"type": "text", "text": f"[{key_of[image.ref]}] {image.label}{when}:\n"})
        parts.append(
            {"type": "image_url", "image_url": {"url": f"data:{image.content_type};base64,{image.data}"}}
        )
    parts.append({"type": "text", "text": "END OF IMAGES\n\n"})
    return parts
