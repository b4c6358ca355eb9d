"""What one commit of the demo history does, and how it is applied to a file tree.

Owns the change vocabulary (Put a template, Edit one exact text) and the
templates under bisector/demo/project/ (shipped as package data). Pure text
in, text out: nothing here runs git or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

CULPRIT = "culprit"
UNTESTABLE = "untestable"


def template(name: str) -> str:
    """The text of bisector/demo/project/<name>.txt."""
    return (files("bisector.demo") / "project" / f"{name}.txt").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Put:
    """Write `path` with the text of template `source` (default: the same path)."""

    path: str
    source: str = ""


@dataclass(frozen=True)
class Edit:
    """Replace the one occurrence of `old` in `path` with `new`."""

    path: str
    old: str
    new: str


Change = Put | Edit


@dataclass(frozen=True)
class Step:
    subject: str
    changes: tuple[Change, ...]
    author: tuple[str, str]  # (name, email), author and committer alike
    body: str = ""
    role: str = ""  # CULPRIT, UNTESTABLE or ""

    @property
    def message(self) -> str:
        return f"{self.subject}\n\n{self.body.strip()}\n" if self.body else f"{self.subject}\n"


def apply(tree: dict[str, str], change: Change) -> None:
    """Apply one change to an in-memory tree {path: text}; raise if an edit misses."""
    if isinstance(change, Put):
        tree[change.path] = template(change.source or change.path)
    else:
        text = tree[change.path]
        count = text.count(change.old)
        if count != 1:
            raise ValueError(f"edit of {change.path} matches {count} times: {change.old[:60]!r}")
        tree[change.path] = text.replace(change.old, change.new)
