"""One user's files and folders, with Nextcloud's etag and mtime propagation to every ancestor."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime


@dataclass
class SimulatedFile:
    """A file below the user's root; `path` is relative to it, without a leading slash."""

    path: str
    file_id: int
    etag: str
    size: int
    modified: datetime


@dataclass
class SimulatedFolder:
    """A folder; the root folder has the path ''."""

    path: str
    file_id: int
    etag: str
    modified: datetime


Node = SimulatedFile | SimulatedFolder


def new_etag() -> str:
    # Nextcloud's etags are uniqid()-style: 13 hexadecimal characters.
    return secrets.token_hex(7)[:13]


def normalise_path(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    if not parts or any(part in {".", ".."} for part in parts):
        raise ValueError(f"not a file path below the root: {path!r}")
    return "/".join(parts)


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


class UserStorage:
    """The files and folders of one user; folders exist implicitly above each file."""

    def __init__(self, next_file_id: Callable[[], int], created: datetime) -> None:
        self._next_file_id = next_file_id
        self.folders: dict[str, SimulatedFolder] = {
            "": SimulatedFolder("", next_file_id(), new_etag(), created)
        }
        self.files: dict[str, SimulatedFile] = {}

    @property
    def root(self) -> SimulatedFolder:
        return self.folders[""]

    def put(self, path: str, size: int, modified: datetime) -> SimulatedFile:
        path = normalise_path(path)
        if path in self.folders:
            raise ValueError(f"{path!r} is a folder")
        self._ensure_folders(parent_of(path), modified)
        existing = self.files.get(path)
        file_id = existing.file_id if existing else self._next_file_id()
        self.files[path] = SimulatedFile(path, file_id, new_etag(), size, modified)
        self._propagate(parent_of(path), modified)
        return self.files[path]

    def delete(self, path: str, modified: datetime) -> None:
        path = normalise_path(path)
        if self.files.pop(path, None) is None:
            raise KeyError(f"no file {path!r}")
        self._propagate(parent_of(path), modified)

    def node(self, path: str) -> Node | None:
        path = path.strip("/")
        return self.folders.get(path) or self.files.get(path)

    def children(self, folder: str) -> list[Node]:
        nodes: list[Node] = [*self.folders.values(), *self.files.values()]
        return [node for node in nodes if node.path and parent_of(node.path) == folder]

    def below(self, folder: str) -> Iterator[Node]:
        """Every node under `folder` at any depth, not the folder itself."""
        prefix = f"{folder}/" if folder else ""
        nodes: list[Node] = [*self.folders.values(), *self.files.values()]
        for node in nodes:
            if node.path and node.path.startswith(prefix) and node.path != folder:
                yield node

    def size_of(self, node: Node) -> int:
        if isinstance(node, SimulatedFile):
            return node.size
        return sum(item.size for item in self.below(node.path) if isinstance(item, SimulatedFile))

    def _ensure_folders(self, folder: str, modified: datetime) -> None:
        if folder in self.folders:
            return
        if folder in self.files:
            raise ValueError(f"{folder!r} is a file")
        self._ensure_folders(parent_of(folder), modified)
        self.folders[folder] = SimulatedFolder(folder, self._next_file_id(), new_etag(), modified)

    def _propagate(self, folder: str, modified: datetime) -> None:
        # Nextcloud's Propagator gives every ancestor a new etag and mtime = GREATEST(mtime, change time).
        while True:
            node = self.folders[folder]
            node.etag = new_etag()
            node.modified = max(node.modified, modified)
            if folder == "":
                return
            folder = parent_of(folder)
