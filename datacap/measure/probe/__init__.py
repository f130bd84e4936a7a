"""Probes: short, cap-sparing downloads on a schedule, each kept beside the cycle's usage (probes.json).

measure.py (when a probe has measured enough), streams.py (its reads), run.py (`downloader.py --probe`),
file.py (probes.json and the quiet-link rule), budget.py (the cycle's budget, paced so each probe can
settle), finding.py (a lasting step down across probes).
"""
