"""Generation against the real CPU vLLM (Gemma 3 270M): schema-valid, cited, and failing cleanly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from clinical_notes.kinds import NoteDraft, get_kind
from fhir_adapters.condense import condense
from fhir_adapters.record import record_from_bundle
from services.core.errors import LlmPermanentError
from services.core.settings import get_settings
from tests.conftest import BIN, REPO, _env
from workers.clients import llm_client
from workers.pipeline import Pipeline

pytestmark = pytest.mark.integration


async def test_progress_note_is_schema_valid_and_cites_the_timeline(
    llm_server: str, synthea_files: list[Path]
) -> None:
    settings = get_settings()
    record = record_from_bundle(synthea_files[0])
    async with llm_client(settings) as llm:
        pipeline = Pipeline(settings, llm=llm)
        kind = get_kind("progress")
        timeline = pipeline.fit(condense(record), kind)
        note, prompt_tokens, completion_tokens = await pipeline.generate(kind, timeline)
    assert timeline.tokens is not None and timeline.tokens <= pipeline.prompt_budget(kind)
    assert prompt_tokens <= settings.llm_context_tokens - settings.llm_max_output_tokens
    assert 0 < completion_tokens <= settings.llm_max_output_tokens
    assert note.kind == "progress" and note.sections
    allowed = set(timeline.refs())
    for section in note.sections:
        assert section.title in kind.sections
        assert 1 <= len(section.statements) <= settings.note_max_statements
        for statement in section.statements:
            assert 0 < len(statement.text) <= settings.statement_max_chars
            assert statement.citations and set(statement.citations) <= allowed
            assert all(c in record.resources for c in statement.citations)


async def test_output_cut_off_is_retried_once_then_a_permanent_error(
    llm_server: str, synthea_files: list[Path]
) -> None:
    settings = get_settings().model_copy(update={"llm_max_output_tokens": 8})
    record = record_from_bundle(synthea_files[1])
    async with llm_client(settings) as llm:
        pipeline = Pipeline(settings, llm=llm)
        kind = get_kind("progress")
        with pytest.raises(LlmPermanentError, match="after a retry: answer cut off at max_tokens=8"):
            await pipeline.generate(kind, pipeline.fit(condense(record), kind))


def test_cli_summarizes_a_bundle_file_without_writing(
    llm_server: str, synthea_files: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "draft.json"
    done = subprocess.run(
        [
            str(BIN / "ehrsum"),
            "summarize",
            "--record",
            str(synthea_files[2]),
            "--kind",
            "progress",
            "--out",
            str(out),
            "--llm-url",
            llm_server,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    draft = NoteDraft.model_validate(json.loads(out.read_text()))
    assert draft.kind == "progress" and draft.cited()
    assert "AI-generated draft" in done.stdout and "## Sources" in done.stdout
    checked = subprocess.run(
        [str(BIN / "ehrsum"), "verify", "--record", str(synthea_files[2]), "--draft", str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout[-2000:]  # only verified statements were kept
