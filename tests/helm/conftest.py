"""Fixtures of the chart tests: the loaded chart and its renders with default and production values."""

from __future__ import annotations

from collections.abc import Iterator

import helm_python as helm
import pytest

from tests.helm.manifests import CHART_DIR, Rendered, production_values, render


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of this directory's tests."""
    config.addinivalue_line("markers", "helm: the Helm chart, images and VM units (no cluster needed)")


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    """The chart, loaded once."""
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def default_render(chart: helm.Chart) -> Rendered:
    """The chart rendered with its default (trial) values."""
    return render(chart)


@pytest.fixture(scope="session")
def production_render(chart: helm.Chart) -> Rendered:
    """The chart rendered with examples/values-production.yaml."""
    return render(chart, production_values())
