"""Recording what a finished job cost."""

from __future__ import annotations

from services.core.usage import Usage
from services.metrics.models import JobUsage


def job_usage(*, job_id: str, timings: dict[str, float], usage: Usage, statements_dropped: int) -> JobUsage:
    """One run's stage seconds, tokens and verifier drops, as the row the job's outcome commits with."""
    return JobUsage(
        job_id=job_id,
        fetch_s=timings.get("fetch", 0.0),
        condense_s=timings.get("condense", 0.0),
        generate_s=timings.get("generate", 0.0),
        verify_s=timings.get("verify", 0.0),
        write_s=timings.get("write", 0.0),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        statements_dropped=statements_dropped,
    )
