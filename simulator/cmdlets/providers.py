"""The PowerShell providers of a simulated host: FileSystem, Registry and Certificate.

Each turns the scenario into a path -> item map for one HostView. Paths compare case-insensitively,
accept both slash styles and the provider-qualified forms PowerShell itself prints
(``Microsoft.PowerShell.Core\\FileSystem::C:\\...``, ``Registry::HKEY_LOCAL_MACHINE\\...``).
Ancestors of anything declared exist implicitly, like real folders above a file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ntpath
import re

from simulator.clock import TimeSpec, parse_time
from simulator.cmdlets import certificates, webconfig
from simulator.estate import HostView

FILESYSTEM, REGISTRY, CERTIFICATE, UNKNOWN = "FileSystem", "Registry", "Certificate", "Unknown"

_FS_PREFIX = re.compile(r"^(?:Microsoft\.PowerShell\.Core\\)?FileSystem::", re.IGNORECASE)
_REG_PREFIX = re.compile(r"^(?:Microsoft\.PowerShell\.Core\\)?Registry::", re.IGNORECASE)
_CERT_PREFIX = re.compile(r"^(?:(?:Microsoft\.PowerShell\.Security\\)?Certificate::|Cert:)\\?", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")
_HIVES = {"hklm:": "HKEY_LOCAL_MACHINE", "hkcu:": "HKEY_CURRENT_USER"}
_LONG_HIVES = {"HKEY_LOCAL_MACHINE", "HKEY_CURRENT_USER", "HKEY_CLASSES_ROOT", "HKEY_USERS", "HKEY_CURRENT_CONFIG"}
_IMPLIED_TIME = parse_time("-1000d")
CERT_STORES = ("My", "Root", "CA", "Trust", "TrustedPeople", "TrustedPublisher", "AuthRoot", "Disallowed",
               "Remote Desktop", "WebHosting")


def classify(path: str) -> tuple[str, str]:
    """(provider, provider-native path): ``C:\\x``, ``HKEY_LOCAL_MACHINE\\x``, ``LocalMachine\\My``."""
    text = path.strip().replace("/", "\\")
    if _FS_PREFIX.match(text):
        return FILESYSTEM, _fs_norm(_FS_PREFIX.sub("", text))
    if _CERT_PREFIX.match(text):
        return CERTIFICATE, _CERT_PREFIX.sub("", text).strip("\\")
    if _REG_PREFIX.match(text):
        return REGISTRY, _reg_norm(_REG_PREFIX.sub("", text))
    head = text.split("\\", 1)[0].lower()
    if head in _HIVES:
        return REGISTRY, _reg_norm(_HIVES[head] + text[len(head):])
    if _DRIVE.match(text):
        return FILESYSTEM, _fs_norm(text)
    return UNKNOWN, text


def _fs_norm(path: str) -> str:
    norm = ntpath.normpath(path)
    if re.fullmatch(r"[A-Za-z]:", norm):
        norm += "\\"
    return norm[0].upper() + norm[1:] if norm else norm


def _reg_norm(path: str) -> str:
    parts = [p for p in path.split("\\") if p]
    if parts and parts[0].upper() in _LONG_HIVES:
        parts[0] = parts[0].upper()
    return "\\".join(parts)


def parent_of(path: str) -> str | None:
    if path.endswith(":\\"):
        return None
    parent = ntpath.dirname(path.rstrip("\\"))
    return _fs_norm(parent) if parent else None


# ---------------------------------------------------------------- FileSystem


@dataclasses.dataclass
class FsItem:
    path: str
    is_dir: bool
    created: dt.datetime | None
    modified: dt.datetime | None
    size: int = 0
    content: str | None = None

    @property
    def name(self) -> str:
        return self.path if self.path.endswith(":\\") else ntpath.basename(self.path)


class FileSystem:
    def __init__(self, view: HostView) -> None:
        self.view = view
        self.items: dict[str, FsItem] = {}
        windows = view.host.windows
        for dir_path, directory in windows.directories.items():
            norm = _fs_norm(dir_path)
            files = []
            for name, entry in directory.files.items():
                content = entry.content
                size = len(content.encode("utf-8")) if content is not None else view.grown_size(
                    entry.size, entry.grow_bytes_per_minute)
                files.append(FsItem(ntpath.join(norm, name), False, self._t(entry.created),
                                    self._t(entry.modified or entry.created), size, content))
            latest = max((f.modified for f in files if f.modified), default=None)
            self._add(FsItem(norm, True, self._t(directory.created),
                             self._t(directory.modified) or latest or self._t(directory.created)))
            for item in files:
                self._add(item)
        exchange = view.host.exchange
        if exchange is not None:
            im = exchange.web_config_im
            thumbprint = certificates.resolve(im.certificate_thumbprint, view) if im is not None else None
            text = webconfig.render(exchange, thumbprint)
            self._add(FsItem(_fs_norm(webconfig.path_of(exchange)), False, self._t(parse_time("-400d")),
                             self._t(parse_time("-30d")), len(text.encode("utf-8")), text))
        for item in list(self.items.values()):
            parent = parent_of(item.path)
            while parent is not None and parent.lower() not in self.items:
                self._add(FsItem(parent, True, self._t(_IMPLIED_TIME), self._t(_IMPLIED_TIME)))
                parent = parent_of(parent)

    def _t(self, spec: TimeSpec | None) -> dt.datetime | None:
        return self.view.at(spec)

    def _add(self, item: FsItem) -> None:
        self.items[item.path.lower()] = item

    def get(self, path: str) -> FsItem | None:
        return self.items.get(path.lower())

    def children(self, path: str, recurse: bool = False) -> list[FsItem]:
        prefix = path.lower().rstrip("\\") + "\\"
        found = []
        for key, item in self.items.items():
            if key.startswith(prefix) and key != path.lower():
                if recurse or "\\" not in key[len(prefix):]:
                    found.append(item)
        return sorted(found, key=lambda i: (not i.is_dir, i.path.lower()))


# ---------------------------------------------------------------- Registry


class Registry:
    def __init__(self, view: HostView) -> None:
        self.keys: dict[str, tuple[str, dict]] = {}
        for raw_path, values in view.host.windows.registry.items():
            _, norm = classify(raw_path)
            self.keys[norm.lower()] = (norm, dict(values))
        for norm, _ in list(self.keys.values()):
            parts = norm.split("\\")
            for i in range(1, len(parts)):
                parent = "\\".join(parts[:i])
                self.keys.setdefault(parent.lower(), (parent, {}))

    def get(self, path: str) -> tuple[str, dict] | None:
        return self.keys.get(path.lower())

    def children(self, path: str) -> list[tuple[str, dict]]:
        prefix = path.lower() + "\\"
        return [v for k, v in sorted(self.keys.items()) if k.startswith(prefix) and "\\" not in k[len(prefix):]]


# ---------------------------------------------------------------- Certificate (LocalMachine)
# Cert:\\LocalMachine\\My is simulator/cmdlets/certificates.py's machine_store(): real certificates.
