"""Prometheus metrics read from the database and the broker at scrape time.

Counters come from durable rows (jobs, job usage, drafts), so they survive restarts of any process and
every API replica reports the same totals (aggregate replicas with max, not sum).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, col, select

from services.core.broker import broker_redis
from services.core.db import get_engine
from services.core.settings import get_settings
from services.jobs.models import JobStatus, SummaryJob
from services.metrics.models import JobUsage

STAGES = ("fetch", "condense", "generate", "verify", "write")


def queue_depth(broker_url: str, queues: list[str]) -> int:
    """Tasks waiting in the Redis broker's queues."""
    client = broker_redis(broker_url)
    lengths: list[int] = [client.llen(queue) for queue in queues]  # type: ignore[misc]
    return sum(lengths)


class ServiceCollector(Collector):
    """Jobs by state, per-stage seconds, LLM tokens, verifier drops, decisions, queue depth."""

    def collect(self) -> Iterator[Metric]:
        """Read the current figures."""
        with Session(get_engine()) as session:
            by_state = dict(
                session.exec(select(SummaryJob.status, func.count()).group_by(SummaryJob.status)).all()
            )
            columns = [f"{stage}_s" for stage in STAGES] + [
                "prompt_tokens",
                "completion_tokens",
                "statements_dropped",
            ]
            totals = (
                session.connection()
                .execute(
                    sa.select(
                        func.count(col(JobUsage.id)),
                        *(func.coalesce(func.sum(getattr(JobUsage, name)), 0) for name in columns),
                    )
                )
                .one()
            )
            decided = _decisions(session)
        jobs = GaugeMetricFamily("ehrsum_jobs", "Jobs in each state now.", labels=["state"])
        for state in JobStatus:
            jobs.add_metric([state.value], float(by_state.get(state, 0)))
        yield jobs
        count, *stage_sums = totals[: 1 + len(STAGES)]
        stages = SummaryMetricFamily("ehrsum_stage_seconds", "Seconds per pipeline stage.", labels=["stage"])
        for stage, seconds in zip(STAGES, stage_sums, strict=True):
            stages.add_metric([stage], count_value=int(count), sum_value=float(seconds))
        yield stages
        prompt, completion, dropped = totals[1 + len(STAGES) :]
        tokens = CounterMetricFamily("ehrsum_llm_tokens", "LLM tokens.", labels=["direction"])
        tokens.add_metric(["in"], float(prompt))
        tokens.add_metric(["out"], float(completion))
        yield tokens
        yield CounterMetricFamily(
            "ehrsum_verifier_rejections", "Statements the verifier removed.", value=float(dropped)
        )
        decisions = CounterMetricFamily(
            "ehrsum_drafts_decided", "Clinicians' decisions.", labels=["decision"]
        )
        for decision, n in decided.items():
            decisions.add_metric([decision], float(n))
        yield decisions
        depth = GaugeMetricFamily("ehrsum_queue_depth", "Tasks waiting in the broker.")
        try:
            settings = get_settings()
            depth.add_metric([], float(queue_depth(settings.broker_url, settings.worker_queues)))
        except redis.RedisError:
            depth.add_metric([], float("nan"))
        yield depth


def _decisions(session: Session) -> dict[str, int]:
    """Approved and rejected drafts, from the draft table."""
    from services.jobs.models import Draft, DraftState

    rows = dict(session.exec(select(Draft.state, func.count()).group_by(Draft.state)).all())
    return {
        "approved": int(rows.get(DraftState.approved, 0)),
        "rejected": int(rows.get(DraftState.rejected, 0)),
    }
