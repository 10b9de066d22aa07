"""Periodic review report: daily KPI trends with charts, worst stages, alerts and
feedback, as HTML and PDF (``wcs report --from --to``).

``data`` reads the numbers (through ``wcs.services.kpis``), ``charts`` draws SVG,
``render`` fills the template and lays it out as PDF.
"""
