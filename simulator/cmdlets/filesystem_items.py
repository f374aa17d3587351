"""Items of the FileSystem provider (files and folders) as remoting sends them.

A FileInfo / DirectoryInfo: its .NET properties, then the notes the provider adds to every item it
outputs (PSPath, PSParentPath, PSChildName, PSIsContainer) with Mode and BaseName.
"""

from __future__ import annotations

import datetime as dt
import ntpath
from typing import Any

from simulator import psobjects
from simulator.cmdlets.base import Invocation
from simulator.cmdlets.providers import FsItem, classify, parent_of
from simulator.estate import HostView

_FS_QUALIFIER = "Microsoft.PowerShell.Core\\FileSystem::"
_FILE_TYPES = ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"]
_DIR_TYPES = ["System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"]


def _creation_time(view: HostView, item: FsItem) -> dt.datetime | None:
    """A declared file or folder was created once, at a fixed instant: its relative ``created`` is
    taken from the estate's start, where other times slide with "now" (a log keeps being written,
    it does not keep being created). Clients rely on it to tell a file from its replacement."""
    parent = parent_of(item.path)
    for dir_path, directory in view.host.windows.directories.items():
        _, norm = classify(dir_path)
        if item.is_dir and norm.lower() == item.path.lower():
            spec = directory.created
        elif not item.is_dir and parent is not None and norm.lower() == parent.lower():
            entries = {name.lower(): entry for name, entry in directory.files.items()}
            entry = entries.get(item.name.lower())
            spec = entry.created if entry is not None else None
        else:
            continue
        return spec.resolve(view.started_at) if spec is not None else item.created
    return item.created


def fs_object(inv: Invocation, item: FsItem) -> Any:
    view = inv.view
    parent = parent_of(item.path)
    created = _creation_time(view, item)
    base_name, extension = ntpath.splitext(item.name) if not item.is_dir else (item.name, "")
    adapted: dict[str, Any] = {"Name": item.name}
    if not item.is_dir:
        adapted.update({
            "Length": psobjects.int64(item.size),
            "DirectoryName": parent,
            "IsReadOnly": False,
        })
    else:
        adapted["Parent"] = ntpath.basename(parent.rstrip("\\")) if parent else None
    adapted.update({
        "Exists": True,
        "FullName": item.path,
        "Extension": extension,
        "CreationTime": view.local_dt(created),
        "CreationTimeUtc": view.utc_dt(created),
        "LastAccessTime": view.local_dt(item.modified),
        "LastAccessTimeUtc": view.utc_dt(item.modified),
        "LastWriteTime": view.local_dt(item.modified),
        "LastWriteTimeUtc": view.utc_dt(item.modified),
        "Attributes": psobjects.FileAttributes.Directory if item.is_dir else psobjects.FileAttributes.Archive,
    })
    extended = {
        "PSPath": _FS_QUALIFIER + item.path,
        "PSParentPath": _FS_QUALIFIER + parent if parent else "",
        "PSChildName": item.name,
        "PSIsContainer": item.is_dir,
        "Mode": "d-----" if item.is_dir else "-a----",
        "BaseName": base_name,
    }
    return psobjects.ps_object(_DIR_TYPES if item.is_dir else _FILE_TYPES, adapted, extended, to_string=item.path)
