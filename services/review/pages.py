"""The review app's HTML: server-rendered, every value escaped, no asset from outside the service."""

from __future__ import annotations

from html import escape

from clinical_notes.draft import SEVERITY_ORDER
from fhir_adapters.review_drafts import OUTSIDE, ReviewDraft, ReviewStatement

BANNER = (
    "AI-generated drafts. Not a medical device: review every statement against its sources, "
    "edit and approve before use."
)
AUTHORS = {"record": "Composed from the record", "model": "Written by the language model"}
STATES = {
    "preliminary": "Awaiting review",
    "approved": "Approved",
    "rejected": "Rejected (entered in error)",
    "superseded": "Superseded by a newer draft",
    "replaced": "Edited and approved as a new document",
}


def page(title: str, body: str, *, status_line: str = "") -> str:
    """A whole page: banner first, then the body."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/review/static/review.css">
<script src="/review/static/review.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to the drafts</a>
<header>
<p class="banner" role="note"><strong>{escape(BANNER)}</strong></p>
{status_line}
</header>
<main id="main" tabindex="-1">
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>
"""


def message(text: str, *, alert: bool) -> str:
    """A notice: an alert (announced at once) for failures, a status for outcomes."""
    role, tone = ("alert", "error") if alert else ("status", "done")
    return f'<div class="notice {tone}" role="{role}">{escape(text)}</div>'


def _id(ref: str) -> str:
    """The id part of a reference, escaped for HTML (ids come from the FHIR server)."""
    return escape(ref.rsplit("/", 1)[-1])


def _guideline_chip(label: str, facts: list[tuple[str, str]]) -> str:
    """A guideline passage: carried by the draft itself, shown in place (nothing to read from the record)."""
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return (
        f'<details class="chip guideline"><summary>{escape(label)}</summary>'
        f'<dl class="facts">{rows}</dl></details>'
    )


def _chips(statement_id: str, citations: list[tuple[str, str]], d: ReviewDraft, csrf: str) -> str:
    """Each cited source as a button that opens its facts (a form posting the page's token, read live);
    a guideline passage shown in place; a source outside the patient's record as a plain warning,
    neither linked nor read."""
    if not citations:
        return ""
    chips = []
    for n, (ref, label) in enumerate(citations):
        if ref in d.outside:
            chips.append(f'<span class="chip outside">{escape(OUTSIDE)}</span>')
            continue
        if ref in d.guidelines:
            chips.append(_guideline_chip(label, d.guidelines[ref]))
            continue
        panel = f"ev-{statement_id}-{n}"
        chips.append(
            f'<form class="chip" method="post" action="/review/evidence">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<input type="hidden" name="ref" value="{escape(ref)}">'
            f'<button type="submit" class="chip" data-panel="{panel}" aria-controls="{panel}" '
            f'aria-expanded="false" aria-label="Source: {escape(label)} ({escape(ref)})">'
            f"{escape(label)}</button></form>"
            f'<div class="evidence" id="{panel}" role="region" aria-label="{escape(label)}" hidden></div>'
        )
    return f'<div class="chips"><span class="chips-label">Sources:</span> {"".join(chips)}</div>'


def _check(s: ReviewStatement) -> str:
    if not s.problems:
        return '<span class="check ok">Verified now against its sources</span>'
    return '<span class="check fail">Check failed: ' + escape("; ".join(s.problems)) + "</span>"


def _sid(draft_id: str, location: str) -> str:
    return f"{draft_id}-{location.replace('[', '').replace(']', '').replace('.', '-')}"


def _statement(draft_id: str, s: ReviewStatement, d: ReviewDraft, csrf: str) -> str:
    return (
        f'<li class="statement author-{escape(s.author)}"><p class="text">{escape(s.text)}</p>'
        f'<p class="meta"><span class="author">{escape(AUTHORS.get(s.author, s.author))}</span> '
        f"{_check(s)}</p>"
        f"{_chips(_sid(draft_id, s.location), s.citations, d, csrf)}</li>"
    )


def _flags(draft_id: str, d: ReviewDraft, labels: dict[str, str], csrf: str) -> str:
    items = []
    for n, f in enumerate(sorted(d.flags, key=lambda f: SEVERITY_ORDER[f.severity])):
        cites = [(ref, labels.get(ref, ref.split("/")[0])) for ref in f.citations]
        items.append(
            f'<li class="flag {f.severity}"><p><span class="severity">{f.severity.upper()}</span> '
            f"<strong>{escape(f.title)}</strong>: {escape(f.rationale)} "
            f'<span class="author">({"rule" if f.source == "rule" else "model"})</span></p>'
            f"{_chips(f'{draft_id}-flag{n}', cites, d, csrf)}</li>"
        )
    return f'<section class="flags" aria-label="Flags"><h3>Flags</h3><ul>{"".join(items)}</ul></section>'


def _override(did: str, failing: int, *, required: bool) -> str:
    """The reason box for approving statements whose check failed, and what it means."""
    return (
        f'<p class="override-note" id="override-note-{did}">{failing} statement(s) fail their check now. '
        "Edit or remove them first (Edit, then approve), or approve as written with your reason, "
        "which is recorded with the note.</p>"
        f'<label for="override-{did}">Reason for approving despite failed checks</label>'
        f'<textarea id="override-{did}" name="override_reason" maxlength="1000" rows="2"'
        f'{" required" if required else ""} aria-describedby="override-note-{did}"></textarea>'
    )


def _decisions(d: ReviewDraft, csrf: str) -> str:
    did = _id(d.ref)
    hidden = (
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="version" value="{escape(d.etag)}">'
    )
    failing = len(d.failing)
    approve = (
        f'<form method="post" action="/review/drafts/{did}/approve" class="approve">{hidden}'
        + (_override(did, failing, required=True) if failing else "")
        + f'<button type="submit" class="approve" aria-label="Approve {escape(d.title)}">'
        + ("Approve despite failed checks" if failing else "Approve")
        + "</button></form>"
    )
    return f"""<div class="decide">
{approve}
<form method="post" action="/review/drafts/{did}/reject" class="reject">{hidden}
<label for="reason-{did}">Reason for rejecting</label>
<textarea id="reason-{did}" name="reason" required maxlength="1000" rows="2"></textarea>
<button type="submit" class="reject" aria-label="Reject {escape(d.title)}">Reject</button></form>
<a class="button" href="/review/drafts/{did}/edit">Edit, then approve</a>
</div>"""


def _outcome(d: ReviewDraft) -> str:
    parts = [STATES.get(d.state, d.state)]
    if d.authenticator:
        parts.append(f"by {d.authenticator}")
    if d.replaced_by:
        parts.append(f"as {d.replaced_by}")
    return " ".join(parts)


def draft_card(d: ReviewDraft, csrf: str, *, can_decide: bool) -> str:
    """One draft: state, flags (first when any is critical), sections of statements, decisions."""
    did = _id(d.ref)
    labels = {ref: label for _, sts in d.sections for s in sts for ref, label in s.citations}
    flags = _flags(did, d, labels, csrf) if d.flags else ""
    sections = "".join(
        f'<section aria-label="{escape(title)}"><h3>{escape(title)}</h3>'
        f'<ul class="statements">{"".join(_statement(did, s, d, csrf) for s in statements)}</ul>'
        "</section>"
        for title, statements in d.sections
    )
    unavailable = (
        f'<p class="unavailable">Model synthesis unavailable: {escape(d.synthesis_unavailable)}. '
        "The facts shown are from the record.</p>"
        if d.synthesis_unavailable
        else ""
    )
    decide = _decisions(d, csrf) if can_decide and d.state == "preliminary" else ""
    checked = d.verification.get("statements_checked")
    if checked is not None:
        removed = d.verification.get("dropped", 0)
        unavailable += (
            f'<p class="written-check">When written: {escape(str(checked))} statements checked against the '
            f"record, {escape(str(removed))} model statements removed for failing a check.</p>"
        )
    body = f"{flags}{sections}" if d.critical_first else f"{sections}{flags}"
    return f"""<article class="draft state-{escape(d.state)}" id="draft-{did}"
 aria-labelledby="title-{did}">
<h2 id="title-{did}">{escape(d.title)}</h2>
<p class="state"><span class="badge">{escape(_outcome(d))}</span> <span class="ref">{escape(d.ref)}</span>
<span class="date">written {escape(d.date)}</span> <span class="version">version {escape(d.etag)}</span></p>
{unavailable}{body}{decide}
</article>"""


def patient_banner(patient: str, facts: list[tuple[str, str]]) -> str:
    """Who the drafts are about, as the record names them, so the clinician can confirm the chart."""
    known = dict(facts)
    born = f"born {known['Date']}" if "Date" in known else None
    text = " · ".join(p for p in (known.get("Name", "Name not recorded"), known.get("Gender"), born) if p)
    return f'<p class="patient"><strong>{escape(text)}</strong> (Patient/{escape(patient)})</p>'


def drafts_page(
    drafts: list[ReviewDraft], csrf: str, *, user: str | None, banner: str, notice: str = "", older: int = 0
) -> str:
    """The patient's drafts, preliminary first."""
    who = f"Signed in as {user}" if user else "Signed in without a FHIR user: read only"
    status_line = f'{banner}<p class="who">{escape(who)}</p>'
    can_decide = bool(user and user.startswith("Practitioner/"))
    cards = "".join(draft_card(d, csrf, can_decide=can_decide) for d in drafts)
    body = notice + (cards or "<p>No AI drafts for this patient.</p>")
    if older:
        body += f"<p>{older} older decided drafts are not shown here; the chart has them.</p>"
    return page("AI drafts for review", body, status_line=status_line)


def evidence_fragment(ref: str, facts: list[tuple[str, str]]) -> str:
    """A cited resource's facts as a definition list."""
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in facts)
    return f'<dl class="facts" data-ref="{escape(ref)}">{rows}</dl>'


def _edit_box(title: str, n: int, s: ReviewStatement) -> str:
    at = escape(s.location)
    return (
        f'<div class="edit-statement"><p><label for="{at}">{escape(title)}, statement {n + 1} '
        f"({escape(AUTHORS.get(s.author, s.author).lower())})</label>"
        f'<textarea id="{at}" name="{at}" rows="3" required>{escape(s.text)}</textarea></p>'
        f'<p class="meta">{_check(s)} <input type="checkbox" name="remove" value="{at}" id="remove-{at}"> '
        f'<label for="remove-{at}">Remove this statement</label></p></div>'
    )


def edit_page(d: ReviewDraft, csrf: str) -> str:
    """Each statement in a labelled text box with its check now and a box to remove it; approving saves a
    replacement document (a statement failing its check is edited, removed, or kept with a reason)."""
    did = _id(d.ref)
    fields = []
    for title, statements in d.sections:
        boxes = "".join(_edit_box(title, n, s) for n, s in enumerate(statements))
        fields.append(f"<fieldset><legend>{escape(title)}</legend>{boxes}</fieldset>")
    failing = len(d.failing)
    override = _override(did, failing, required=False) if failing else ""
    body = f"""<p>Your edited note is saved as a new final document that replaces draft {did};
the draft is kept as written.</p>
<form method="post" action="/review/drafts/{did}/edit">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<input type="hidden" name="version" value="{escape(d.etag)}">
{"".join(fields)}
{override}
<button type="submit" class="approve">Approve edited note</button>
<a class="button" href="/review/#draft-{did}">Cancel</a>
</form>"""
    return page(f"Edit {d.title}", body)


def error_page(text: str) -> str:
    """A failure the clinician can act on."""
    return page("Review app", message(text, alert=True))
