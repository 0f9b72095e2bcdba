"""The data-protection officer's report for a period: figures gathered from
the ledger and the policy (figures.py), laid out as text (text.py) or as one
self-contained HTML page with SVG charts (page.py, charts.py), or as JSON."""

from __future__ import annotations

from .figures import ReportFigures, gather, period_bounds, to_json
from .page import render_html
from .text import render_text

__all__ = ["ReportFigures", "gather", "period_bounds", "render_html", "render_text", "to_json"]
