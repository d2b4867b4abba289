"""Recording what a finished job cost."""

from __future__ import annotations

from sqlmodel import Session

from services.metrics.models import JobUsage


def record_usage(
    *,
    session: Session,
    job_id: str,
    timings: dict[str, float],
    prompt_tokens: int,
    completion_tokens: int,
    statements_dropped: int,
) -> JobUsage:
    """Store one run's stage seconds, tokens and verifier drops; commit."""
    usage = JobUsage(
        job_id=job_id,
        fetch_s=timings.get("fetch", 0.0),
        condense_s=timings.get("condense", 0.0),
        generate_s=timings.get("generate", 0.0),
        verify_s=timings.get("verify", 0.0),
        write_s=timings.get("write", 0.0),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        statements_dropped=statements_dropped,
    )
    session.add(usage)
    session.commit()
    return usage
