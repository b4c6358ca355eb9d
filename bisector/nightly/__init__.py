"""Nightly CI hunts: `session` runs a night, `compare` decides, `series` remembers.

The package's public names are re-exported here.
"""

from .compare import Check, check_sentence, compare, holm_adjust
from .series import Night, last_baseline, metric_history, series_key, stored_nights
from .session import NightlySession, NightlySettings, write_ci_files

__all__ = ["Check", "Night", "NightlySession", "NightlySettings", "check_sentence", "compare",
           "holm_adjust", "last_baseline", "metric_history", "series_key", "stored_nights",
           "write_ci_files"]
