"""Guideline passages for plan considerations: a hospital's local guideline library split into passages with
stable ids, a lexical index, retrieval keyed by the patient's active problems, abnormal results and
medications, and what the verifier knows of a passage.

A passage's id is `{document}#{section}@{version}` (a section longer than one passage gets `-2`, `-3`...):
the same document, section and version always give the same id, so a draft's citation still names its
passage after the library is reloaded. The model sees passages under keys like `G3`, each mapped back to
`Guideline/{id}`. Chart facts and guideline evidence stay apart: a statement that recommends something
must cite the passage it follows ("no source, no recommendation"), and the passage must hold what the
statement says of it (concepts, numbers, drug names), as a record resource must.

Retrieval is BM25 (bm25s) over the passages' concept stems (clinical_notes.concepts: the same stems,
clinical synonyms and Korean/Chinese terms the verifier grounds on), so "Essential hypertension (disorder)"
finds a passage about "high blood pressure"; no network, no model.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from clinical_notes import cjk
from clinical_notes.concepts import content_stems, words
from clinical_notes.evidence import Evidence, EvidenceSource, quantities_in
from clinical_notes.language import ENGLISH, Wording
from clinical_notes.lexicon import SYNONYM_GROUPS
from clinical_notes.statements import plain, record
from clinical_notes.timeline import ClinicalTimeline, Passage, assign_keys

GUIDELINE = "Guideline/"
PASSAGE_WORDS = 120  # a passage is a paragraph or two: enough to cite, small enough to check against
PER_ITEM = 3  # passages given to the model per problem, result or medication
MAX_PASSAGES = 8  # passages in one prompt
_HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
_HTML_HEADING = re.compile(r"<h([1-4])[^>]*>(.*?)</h\1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_FRONT = re.compile(r"^---\s*\n(.*?)\n---\s*\n", re.DOTALL)
# What recommends an action, in each draft language: such a statement must cite a guideline passage.
RECOMMENDS = re.compile(
    r"\b(recommend\w*|guideline\w*|first[- ]line|initiat\w+|titrat\w+|target(ed|s)? (of|is|below|under|<)|"
    r"should (be )?(start|begin|initiat|add|switch|increas|titrat|target|continu|prescrib)\w*|"
    r"indicated for|is indicated|preferred (therapy|treatment|agent)|"
    r"recommand\w*|en première intention|il (faut|convient de) (débuter|instaurer|ajouter|introduire)|"
    r"cible (de|inférieure|<))\b"
    r"|권고|권장|1차 치료|일차 치료|목표 (혈압|수치)|시작해야|推薦|建議(使用|開始|加上|給予)|第一線|目標值",
    re.IGNORECASE,
)


def slug(text: str) -> str:
    """A heading as an id part ("Recommendation 3: threshold" → "recommendation-3-threshold")."""
    found = re.sub(r"[^\w]+", "-", text.casefold(), flags=re.UNICODE).strip("-")
    return found[:60].strip("-") or "text"


def front_matter(text: str) -> tuple[dict[str, str], str]:
    """`key: value` lines between `---` fences at the top of a document, and the rest."""
    found = _FRONT.match(text)
    if not found:
        return {}, text
    meta = {}
    for line in found[1].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[found.end() :]


def _sections_markdown(body: str) -> Iterator[tuple[str, str]]:
    heading, lines = "", list[str]()
    for line in body.splitlines():
        found = _HEADING.match(line)
        if found:
            yield heading, "\n".join(lines)
            heading, lines = found[2], []
        else:
            lines.append(line)
    yield heading, "\n".join(lines)


def _sections_html(body: str) -> Iterator[tuple[str, str]]:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.IGNORECASE | re.DOTALL)
    last, heading = 0, ""
    for found in _HTML_HEADING.finditer(body):
        yield heading, body[last : found.start()]
        heading, last = html.unescape(_TAG.sub(" ", found[2])).strip(), found.end()
    yield heading, body[last:]


def _sections_text(body: str) -> Iterator[tuple[str, str]]:
    """Plain text: a short line followed by a blank line, or ending in a colon, opens a section."""
    heading, lines = "", list[str]()
    for block in re.split(r"\n\s*\n", body):
        first, _, rest = block.strip().partition("\n")
        if first and len(first) <= 80 and (first.endswith(":") or not rest) and not first.endswith("."):
            yield heading, "\n\n".join(lines)
            heading, lines = first.rstrip(":"), [rest] if rest else []
        else:
            lines.append(block)
    yield heading, "\n\n".join(lines)


def _chunks(text: str) -> Iterator[str]:
    """Paragraphs joined up to about PASSAGE_WORDS words (a longer paragraph is its own passage)."""
    chunk: list[str] = []
    words = 0
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        size = len(paragraph.split())
        if chunk and words + size > PASSAGE_WORDS:
            yield "\n".join(chunk)
            chunk, words = [], 0
        chunk.append(paragraph)
        words += size
    if chunk:
        yield "\n".join(chunk)


def split_document(text: str, name: str, fmt: str, meta: dict[str, str] | None = None) -> list[Passage]:
    """A document's passages: sections by heading (Markdown #, HTML <h1>-<h4>, short lines in text), each
    cut into paragraphs of up to ~PASSAGE_WORDS words. `meta` (or the document's front matter) gives its id,
    title, version, source and licence; the id defaults to the file name."""
    found, body = front_matter(text)
    meta = {**found, **(meta or {})}
    sections = {"md": _sections_markdown, "html": _sections_html}.get(fmt, _sections_text)(body)
    document = slug(meta.get("id") or name)
    version = meta.get("version") or meta.get("date") or "unversioned"
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    title = meta.get("title") or ""
    for heading, content in sections:
        plain_text = html.unescape(_TAG.sub(" ", content)) if fmt == "html" else content
        plain_text = re.sub(r"[ \t]+", " ", plain_text)
        if not title and heading:
            title = heading
        for chunk in _chunks(plain_text):
            section = slug(heading or "text")
            seen[section] = seen.get(section, 0) + 1
            suffix = f"-{seen[section]}" if seen[section] > 1 else ""
            passages.append(
                Passage(
                    id=f"{document}#{section}{suffix}@{slug(version)}",
                    document=document,
                    title=title or name,
                    section=heading or "",
                    version=version,
                    text=chunk,
                    source=meta.get("source"),
                    licence=meta.get("licence") or meta.get("license"),
                )
            )
    for p in passages:
        p.title = title or name
    return passages


# Synonym groups that name a setting, a sex or the absence of allergies: never what a guideline is about.
NOT_TOPICS = frozenset({"no known allergies", "female", "male", "amb", "emer", "imp", "obsenc", "hh", "vr"})
CONCEPT = "concept:"


@lru_cache(maxsize=1)
def _concept_index() -> dict[str, str]:
    """Each synonym (as words) → its group's first member, the concept's id."""
    return {
        " ".join(words(member)): group[0]
        for group in SYNONYM_GROUPS
        if group[0] not in NOT_TOPICS
        for member in group
    }


def concepts_in(text: str) -> set[str]:
    """The clinical concepts a text names, longest phrase first ("hemoglobin A1c" is A1c, not also
    hemoglobin), English or through the Korean/Chinese lexicon."""
    index = _concept_index()
    tokens = words(text)
    found = set()
    i = 0
    while i < len(tokens):
        for size in (4, 3, 2, 1):
            head = index.get(" ".join(tokens[i : i + size]))
            if head is not None:
                found.add(head)
                i += size
                break
        else:
            i += 1
    if cjk.has_cjk(text):
        found |= {index[k] for e in cjk.english_concepts(text) if (k := " ".join(words(e))) in index}
    return {CONCEPT + c for c in found}


def _terms(text: str) -> set[str]:
    """What retrieval matches on: a text's clinical concepts and its content stems."""
    return concepts_in(text) | content_stems(text)


@dataclass
class Library:
    """A guideline library: its passages, what could not be read (with why), and a BM25 index."""

    passages: list[Passage]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    documents: int = 0
    _index: Any = None
    _terms: list[set[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import bm25s  # imported with the first library: numpy and scipy are not needed before

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG and logs every index build
        self._index = bm25s.BM25()
        if self.passages:
            self._terms = [_terms(_passage_text(p)) for p in self.passages]
            self._index.index([sorted(t) for t in self._terms], show_progress=False)

    def search(self, text: str, k: int = 5) -> list[tuple[Passage, float]]:
        """The passages best matching what a text names, best first. A passage must name one of the text's
        clinical concepts; for a text naming none the lexicon knows, it must hold every content word."""
        query = _terms(text)
        if not self.passages or not query:
            return []
        concepts = {q for q in query if q.startswith(CONCEPT)}
        found, scores = self._index.retrieve([sorted(query)], k=len(self.passages), show_progress=False)
        hits = []
        for i, score in zip(found[0], scores[0], strict=True):
            terms = self._terms[int(i)]
            if score > 0 and (concepts & terms if concepts else query <= terms):
                hits.append((self.passages[int(i)], float(score)))
        return hits[:k]


def _passage_text(p: Passage) -> str:
    return f"{p.title}. {p.section}. {p.text}"


@dataclass(frozen=True)
class Need:
    """What the patient's record asks guidance for: an active problem, an abnormal result or a drug."""

    what: str  # problem, result, medication
    ref: str
    name: str


def needs(t: ClinicalTimeline) -> list[Need]:
    """Active problems (disorders first), abnormal latest results and active medications: retrieval keys."""
    found = [Need("problem", p.ref, plain(p.name)) for p in t.problems if p.active]
    found.sort(key=lambda n: n.name.lower().endswith(("(finding)", "(situation)")))
    found += [Need("result", s.latest.ref, plain(s.name)) for s in t.labs if s.latest.abnormal]
    found += [Need("medication", m.ref, m.name) for m in t.medications if m.active]
    return found


def retrieve(
    library: Library, t: ClinicalTimeline, k: int = 5
) -> list[tuple[Need, list[tuple[Passage, float]]]]:
    """The best passages for each need of the record (none when no passage shares a concept with it)."""
    return [(need, library.search(need.name, k)) for need in needs(t)]


def attach(t: ClinicalTimeline, library: Library) -> ClinicalTimeline:
    """The timeline with the passages the model is given (the best PER_ITEM for each need, problems first, at
    most MAX_PASSAGES) and the active problems no passage covers; citation keys assigned again."""
    chosen: dict[str, Passage] = {}
    gaps = []
    for need, hits in retrieve(library, t, PER_ITEM):
        if need.what == "problem" and not hits:
            gaps.append(need.ref)
        for passage, _ in hits:
            if len(chosen) < MAX_PASSAGES:
                chosen.setdefault(passage.id, passage)
    t.guidelines = list(chosen.values())
    t.guideline_gaps = gaps
    t.guidelines_checked = True
    t.keys = assign_keys(t.refs())
    return t


def is_guideline(ref: str) -> bool:
    """Whether a citation names a guideline passage rather than a record resource."""
    return ref.startswith(GUIDELINE)


def evidence_of_passage(p: Passage) -> Evidence:
    """What a passage can vouch for: its concepts, drug names and numbers (it has no dates of the patient)."""
    return Evidence(p.ref, quantities=quantities_in(p.text), terms=content_stems(_passage_text(p)))


class WithGuidelines:
    """The record's evidence plus the guideline passages a draft may cite."""

    def __init__(self, inner: EvidenceSource, passages: Iterable[Passage]):
        self.inner = inner
        self.passages = {p.ref: p for p in passages}

    def evidence(self, ref: str) -> Evidence | None:
        """A passage's evidence, else the record's."""
        if is_guideline(ref):
            passage = self.passages.get(ref)
            return evidence_of_passage(passage) if passage is not None else None
        return self.inner.evidence(ref)


@lru_cache(maxsize=1)
def _concept_stems() -> dict[str, frozenset[str]]:
    """Each concept id → the stems of every member of its synonym group."""
    found: dict[str, set[str]] = {}
    for phrase, head in _concept_index().items():
        found.setdefault(CONCEPT + head, set()).update(content_stems(phrase) or {phrase})
    return {k: frozenset(v) for k, v in found.items()}


def unsupported(text: str, cited: Iterable[Evidence]) -> list[str]:
    """The clinical concepts (drugs, problems, tests) a statement names that none of its cited passages or
    resources names: a passage-cited statement may say only what its sources say."""
    terms = set().union(*(e.terms for e in cited))
    stems = _concept_stems()
    return sorted(c.removeprefix(CONCEPT) for c in concepts_in(text) if not stems.get(c, frozenset()) & terms)


def uncited_recommendation(text: str, citations: Iterable[str]) -> bool:
    """A statement that recommends something without citing the guideline passage it follows."""
    return RECOMMENDS.search(text) is not None and not any(is_guideline(c) for c in citations)


GAP = {
    "en": "No passage of the guideline library covers {names}; no guideline-based consideration is offered.",
    "fr": (
        "Aucun passage de la bibliothèque de recommandations ne couvre : {names} ; aucune proposition "
        "fondée sur une recommandation n'est faite à leur sujet."
    ),
    "ko": "지침 라이브러리에 다음에 해당하는 구절이 없어 지침 기반 고려사항을 제시하지 않습니다: {names}.",
    "zh-Hant": "指引庫中沒有涵蓋以下問題的段落，因此不提出以指引為依據的考量：{names}。",
}


def gap_statements(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Any]:
    """One statement naming and citing the active problems no passage covers (said, never filled in)."""
    if not t.guideline_gaps:
        return []
    names = {p.ref: plain(p.name) for p in t.problems}
    listed = ("、" if words.code == "zh-Hant" else ", ").join(names.get(ref, ref) for ref in t.guideline_gaps)
    return [record(GAP.get(words.code, GAP["en"]).format(names=listed), t.guideline_gaps)]
