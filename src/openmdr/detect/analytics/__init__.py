"""Behaviour analytics: user/entity baselines and network analytics that catch what rules miss.

Entry point: :class:`AnalyticsEngine` (batch :meth:`~AnalyticsEngine.analyze`, streaming
:meth:`~AnalyticsEngine.feed` / :meth:`~AnalyticsEngine.flush`, baselines
:meth:`~AnalyticsEngine.snapshot` / :meth:`~AnalyticsEngine.restore`), configured by
:class:`AnalyticsSettings`.  See docs/analytics.md.
"""

from openmdr.detect.analytics.engine import AnalyticsEngine, BaselineRecord
from openmdr.detect.analytics.settings import AnalyticsSettings

__all__ = ["AnalyticsEngine", "AnalyticsSettings", "BaselineRecord"]
