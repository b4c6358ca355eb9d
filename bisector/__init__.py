"""bisector: find the commit and the config delta that made a metric worse."""
__version__ = "0.1.0"
