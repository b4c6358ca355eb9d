"""Copy the files probes left in BISECTOR_ARTIFACTS next to the report, under safe names.

Owns the only file names the report invents: every copied file lands in
`<out>/artifacts/<run_id>/<safe name>`, where the safe name keeps letters,
digits, '.', '_' and '-' only, never starts with a dot, and is checked to
resolve inside the report folder. It reads only folders inside the store's own
artifacts folder (a store imported from elsewhere cannot point it at ~/.ssh)
and never follows a symbolic link (a probe cannot smuggle /etc/passwd into a
report). It never deletes anything: a re-render overwrites its own copies.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bisector.model import Run

MAX_FILES_PER_RUN = 200
MAX_FILE_BYTES = 64 * 1024 * 1024  # bigger files are listed, not copied
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


@dataclass(frozen=True)
class ArtifactLink:
    """One file a probe run left; `name` is untrusted text, `href` is safe to link."""

    name: str  # the path the probe gave it, relative to its artifacts folder
    href: str  # relative URL from index.html; "" when the file was not copied
    size: int
    note: str = ""  # why it was not copied
    image: bool = False


def safe_name(relative: str) -> str:
    """A flat file name made of [A-Za-z0-9._-] that cannot climb out of its folder.

    >>> safe_name("../../evil")
    '_..__..__evil'
    """
    flat = _UNSAFE.sub("_", relative.replace(os.sep, "__"))
    if flat.startswith((".", "-")) or not flat:
        flat = "_" + flat
    if len(flat) > _MAX_NAME:
        stem, dot, suffix = flat.rpartition(".")
        keep = ("." + suffix) if dot and len(suffix) <= 10 else ""
        flat = flat[: _MAX_NAME - len(keep)] + keep
    return flat


def _unique(name: str, taken: set[str]) -> str:
    """Case-insensitively unique within one run (two names may sanitise alike)."""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        stem, dot, suffix = name.rpartition(".")
        candidate = f"{stem}-{n}.{suffix}" if dot and stem else f"{name}-{n}"
    taken.add(candidate.lower())
    return candidate


def _files_under(root: Path) -> list[tuple[str, Path]]:
    """(relative name, path) for every entry below root, sorted, without following links."""
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files) + sorted(d for d in dirs if (Path(folder) / d).is_symlink()):
            path = Path(folder) / name
            found.append((str(path.relative_to(root)), path))
    return sorted(found)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def copy_run_artifacts(run: Run, out_dir: Path, allowed_root: Path) -> list[ArtifactLink]:
    """Copy one run's artifacts into out_dir/artifacts/<run_id>/ and describe them.

    Only a folder inside `allowed_root` (the store's artifacts folder) is read.
    """
    if not run.artifacts or run.run_id is None:
        return []
    source = Path(run.artifacts)
    if not source.is_dir() or source.is_symlink():
        return []
    if not _inside(source, allowed_root):
        return [ArtifactLink(run.artifacts, "", 0, "folder outside the store's artifacts "
                                                   f"folder {allowed_root}, not copied")]
    folder = out_dir / "artifacts" / str(int(run.run_id))
    links: list[ArtifactLink] = []
    taken: set[str] = set()
    for relative, path in _files_under(source):
        if len(links) >= MAX_FILES_PER_RUN:
            links.append(ArtifactLink("…", "", 0, f"more files not copied (limit "
                                                  f"{MAX_FILES_PER_RUN} per run)"))
            break
        if path.is_symlink():
            links.append(ArtifactLink(relative, "", 0, "symbolic link, not copied"))
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            links.append(ArtifactLink(relative, "", size, f"larger than "
                                      f"{MAX_FILE_BYTES // (1024 * 1024)} MB, not copied"))
            continue
        name = _unique(safe_name(relative), taken)
        target = folder / name
        folder.mkdir(parents=True, exist_ok=True)
        if not _inside(target.parent, out_dir) or target.is_symlink():
            links.append(ArtifactLink(relative, "", size, "unsafe destination, not copied"))
            continue
        shutil.copyfile(path, target, follow_symlinks=False)
        href = f"artifacts/{int(run.run_id)}/{quote(name)}"
        links.append(ArtifactLink(relative, href, size,
                                  image=name.lower().endswith(_IMAGE_SUFFIXES)))
    return links


def copy_artifacts(runs: list[Run], out_dir: Path, allowed_root: Path
                   ) -> dict[int, list[ArtifactLink]]:
    """Artifacts of every run that has any, keyed by run id."""
    copied: dict[int, list[ArtifactLink]] = {}
    for run in runs:
        if run.run_id is not None and run.run_id not in copied:
            links = copy_run_artifacts(run, out_dir, allowed_root)
            if links:
                copied[run.run_id] = links
    return copied
