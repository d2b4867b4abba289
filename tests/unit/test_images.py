"""Image attachments: which are sent (inline, image types, size and number capped) and how a request
carries them (a key line, then the image part, between the timeline and the task)."""

from __future__ import annotations

import base64
from typing import Any

from clinical_notes import prompts
from clinical_notes.attachments import image_keys, image_parts
from clinical_notes.kinds import get_kind
from fhir_adapters.condense import condense
from fhir_adapters.images import record_images
from fhir_adapters.record import record_from_bundle_json
from tests.support.images import image_document, png


def bundle(*documents: dict[str, Any]) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1960-01-01"}
    note = {
        "resourceType": "DocumentReference",
        "id": "n1",
        "status": "current",
        "subject": {"reference": "Patient/p"},
        "date": "2024-05-01T09:00:00Z",
        "type": {"text": "Progress note"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "V291bmQgaGVhbGluZy4="}}],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (patient, note, *documents)],
    }


def test_only_inline_images_within_the_caps_are_sent() -> None:
    url_only = image_document("url", "p", png())
    url_only["content"][0]["attachment"] = {"contentType": "image/png", "url": "Binary/b1"}
    tiff = image_document("tiff", "p", png())
    tiff["content"][0]["attachment"]["contentType"] = "image/tiff"
    record = record_from_bundle_json(
        bundle(
            image_document("small", "p", png(8, 8), "2024-05-03T00:00:00Z"),
            image_document("big", "p", png(400, 400) + b"\x00" * 5000),
            image_document("older", "p", png(4, 4), "2020-01-01T00:00:00Z"),
            url_only,
            tiff,
        )
    )
    images, left_out = record_images(record, max_bytes=2000, max_count=1)
    assert [i.ref for i in images] == ["DocumentReference/small"]
    assert images[0].label == "Wound photograph" and images[0].content_type == "image/png"
    reasons = "\n".join(left_out)
    assert "DocumentReference/big: image of" in reasons and "over the 2000-byte cap" in reasons
    assert "DocumentReference/older: over the 1-image limit" in reasons
    assert "DocumentReference/url: the image is not inline" in reasons
    assert "DocumentReference/tiff: image/tiff is not an image type" in reasons
    assert not any("n1" in line for line in left_out)  # a text note is no image


def test_images_sit_between_the_timeline_and_the_task_under_their_keys() -> None:
    record = record_from_bundle_json(bundle(image_document("photo", "p", png())))
    timeline = condense(record)
    images, _ = record_images(record, 10_000, 4)
    keys = image_keys(timeline, images)
    assert keys == {"D2": "DocumentReference/photo"}  # D1 is the text note on the timeline
    assert timeline.citation_keys()["D1"] == "DocumentReference/n1"
    kind = get_kind("progress")
    user = prompts.messages(kind, "timeline text", images=image_parts(images, keys))[1]["content"]
    assert isinstance(user, list)
    assert user[0] == {"type": "text", "text": prompts.timeline_block("timeline text")}
    assert user[2]["text"].startswith("[D2] Wound photograph, 2024-05-02")
    assert user[3]["type"] == "image_url" and user[3]["image_url"]["url"].startswith(
        "data:image/png;base64,iVBOR"
    )
    assert user[-1] == {"type": "text", "text": prompts.task(kind)}
    plain = prompts.messages(kind, "timeline text")[1]["content"]
    assert plain == prompts.timeline_block("timeline text") + prompts.task(kind)


def test_media_images_are_sent_and_cited_like_documents() -> None:
    media = {
        "resourceType": "Media",
        "id": "m1",
        "status": "completed",
        "subject": {"reference": "Patient/p"},
        "createdDateTime": "2024-06-01T08:00:00Z",
        "modality": {"text": "Dermatology photograph"},
        "content": {"contentType": "image/png", "data": base64.b64encode(png(6, 6)).decode()},
    }
    retracted = {**media, "id": "m2", "status": "entered-in-error"}
    record = record_from_bundle_json(bundle(image_document("photo", "p", png()), media, retracted))
    images, left_out = record_images(record, max_bytes=10_000, max_count=4)
    assert [i.ref for i in images] == ["Media/m1", "DocumentReference/photo"]  # newest first
    assert images[0].label == "Dermatology photograph" and images[0].date == "2024-06-01T08:00:00+00:00"
    assert left_out == []
    keys = image_keys(condense(record), images)
    assert set(keys.values()) == {"Media/m1", "DocumentReference/photo"}
