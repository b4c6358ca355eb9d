"""The embedded demo: a throwaway git repository with a metric regression to hunt.

`build_demo_repo(path)` creates a small PyTorch ptychography project in about
forty commits; one of them starts passing object_big, probe_big and
pad_object to the trainer, and the reconstruction gets worse (see
bisector.demo.history). This package builds the repository only; running
`find` on it is the CLI's job.
"""

from __future__ import annotations

from bisector.demo.build import DemoRepo, build_demo_repo

__all__ = ["DemoRepo", "build_demo_repo"]
