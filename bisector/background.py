"""Work kept off a hunt's critical path: imports ahead of need, cleanup during the report.

Owns two threads and nothing else: it never decides, measures or writes results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack, suppress


def close_in_background(stack: ExitStack) -> Callable[[], None]:
    """Close `stack` in a thread; the returned function waits for it and raises its error."""
    errors: list[BaseException] = []

    def close() -> None:
        try:
            stack.close()
        except BaseException as exc:  # handed to the waiting thread
            errors.append(exc)

    thread = threading.Thread(target=close, name="bisector-cleanup")
    thread.start()

    def wait() -> None:
        thread.join()
        if errors:
            raise errors[0]

    return wait


def preload(after: Callable[[], bool] = lambda: True) -> None:
    """Import the noisy engine and the report in a thread, once per process.

    numpy, scipy, matplotlib and the page template cost about half a second of CPU
    that would otherwise sit on the hunt's critical path: the engine between the
    endpoint round and the search, the report after the last probe run. The thread
    calls `after` first and imports only if it returns True (the hunt waits there
    until its first probe runs have started and shows they run long enough to hide
    the imports). Each module has its own import lock, so the hunt's own imports
    simply wait for these; a failure is ignored here and surfaces where the hunt
    imports the module.
    """
    global _preloading
    if _preloading is None:
        _preloading = threading.Thread(target=_import_later_modules, args=(after,),
                                       name="bisector-preload")
        _preloading.start()


_preloading: threading.Thread | None = None


def _import_later_modules(after: Callable[[], bool]) -> None:
    with suppress(Exception):
        if not after():
            return
        from . import noisy  # noqa: F401
        from .report import preload as compile_report

        compile_report()
