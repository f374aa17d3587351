"""Check E2: the IM log folder of an Exchange mailbox server exists and grows.

``<ExchangeInstallPath>\\Logging\\OWA\\InstantMessaging`` missing means the OWA-Lync integration
failed for certain; a folder that stops growing while users use OWA is suspicious (the pool is
stopped, or IM never initialised). Two ways to look at it:

- ``remote`` (default): through the server's Windows endpoint. ``Get-ChildItem -File`` lists the
  folder (a PathNotFound error means it is absent: a result, not a failure); the install path comes
  once from the Exchange setup key in the registry; the parent ``Logging\\OWA`` is looked at only
  when the folder is absent (when the folder is there, so is its parent).
- ``local``: a folder on this machine or an SMB mount, followed by a watchdog observer started on
  the first run and kept in the job's memory (``polling`` for SMB mounts, where inotify sees
  nothing of other machines' writes; :mod:`collectors.im_log_folder.local_folder`). Each run
  reconciles with a full listing.

Either way the bytes-written counter comes from :mod:`collectors.im_log_folder.accounting`.
"""

from __future__ import annotations

import ntpath
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field as SettingField
from pydantic import model_validator

from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    Duration,
    ErrorKind,
    Field,
    MetricSpec,
    Sample,
    Shape,
)
from collectors.helpers.cmdlet_policy import OneOf
from collectors.helpers.text import clean_text
from collectors.im_log_folder.accounting import (
    FileState,
    FolderView,
    WrittenBytesLedger,
)
from collectors.im_log_folder.local_folder import LocalFolder

EXCHANGE_SETUP_KEY = r"HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15\Setup"
IM_LOG_SUBFOLDER = r"Logging\OWA\InstantMessaging"
PATH_NOT_FOUND = "PathNotFound"

SETUP_KEY_SHAPE = Shape("Get-ItemProperty", (Field("MsiInstallPath", "str", required=False, nullable=True),))
FILE_SHAPE = Shape(
    "Get-ChildItem",
    (
        Field("Name", "str"),
        Field("Length", "int"),
        Field("FullName", "str", required=False, nullable=True),
        Field("CreationTimeUtc", "datetime", required=False, nullable=True),
        Field("LastWriteTimeUtc", "datetime", required=False, nullable=True),
    ),
)
ITEM_SHAPE = Shape("Get-Item", ())

PRESENT = MetricSpec(
    "lync_owa_im_log_folder_present",
    "gauge",
    "1 when the OWA IM log folder (<Exchange>\\Logging\\OWA\\InstantMessaging) exists; 0 means the "
    "OWA-Lync integration failed.",
)
PARENT_PRESENT = MetricSpec(
    "lync_owa_im_log_parent_folder_present",
    "gauge",
    "1 when the IM log folder's parent (<Exchange>\\Logging\\OWA) exists.",
)
FILES = MetricSpec("lync_owa_im_log_files", "gauge", "Files in the IM log folder (0 while it is absent).")
BYTES = MetricSpec("lync_owa_im_log_bytes", "gauge", "Total size of the files in the IM log folder, in bytes.")
NEWEST_WRITE = MetricSpec(
    "lync_owa_im_log_newest_write_timestamp_seconds",
    "gauge",
    "Last write time of the most recently written file in the IM log folder (absent without files).",
)
WRITTEN = MetricSpec(
    "lync_owa_im_log_written_bytes_total",
    "counter",
    "Bytes written to the IM log files since the exporter started watching; never decreases when "
    "logs rotate, are truncated or deleted, or the folder is recreated.",
)

_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")


class ImLogFolderSettings(CollectorSettings):
    # remote: through the target's Windows endpoint; local: a folder on this machine or an SMB mount.
    mode: Literal["remote", "local"] = "remote"
    # The folder. Remote: a Windows path, default <MsiInstallPath>\Logging\OWA\InstantMessaging from
    # the Exchange setup key. Local: required, an absolute path on this machine.
    path: str | None = None
    # Local mode: native (inotify / ReadDirectoryChanges) or polling (SMB mounts).
    observer: Literal["native", "polling"] = "native"
    # Local mode, polling observer: how often the folder is listed.
    poll_interval: Duration = SettingField(default=1.0, gt=0)

    @model_validator(mode="after")
    def _path_fits_mode(self) -> "ImLogFolderSettings":
        path = (self.path or "").strip()
        if self.mode == "local":
            if not path:
                raise ValueError("path: required when mode is local (the folder to watch)")
            if not os.path.isabs(path):
                raise ValueError("path: must be an absolute path when mode is local")
        elif path and not _WINDOWS_ABSOLUTE.match(path):
            raise ValueError(r"path: must be an absolute Windows path (C:\... or \\server\share\...) in remote mode")
        return self


@dataclass
class ImLogFolderState:
    ledger: WrittenBytesLedger = field(default_factory=WrittenBytesLedger)  # remote mode
    install_path: str | None = None  # Exchange's, read once per job (remote mode)
    watch: LocalFolder | None = None  # local mode: started by the first run, stopped by close()


Context = CollectContext[ImLogFolderSettings, ImLogFolderState]


class ImLogFolderCollector(Collector[ImLogFolderSettings, ImLogFolderState]):
    name = "im_log_folder"
    roles = frozenset({"exchange_mailbox"})
    settings_model = ImLogFolderSettings
    state_model = ImLogFolderState
    metrics = (PRESENT, PARENT_PRESENT, FILES, BYTES, NEWEST_WRITE, WRITTEN)
    cmdlets = (("windows", "Get-ItemProperty"), ("windows", "Get-ChildItem"), ("windows", "Get-Item"))
    # The folder is configurable (`path`), so its value cannot be pinned; the registry key can.
    cmdlet_parameters = {
        "Get-ItemProperty": {"LiteralPath": OneOf((EXCHANGE_SETUP_KEY,))},
        "Get-ChildItem": {"LiteralPath": None, "File": None},
        "Get-Item": {"LiteralPath": None},
    }

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        view = self._local(ctx, settings) if settings.mode == "local" else self._remote(ctx, settings)
        return samples_of(view)

    def close(self, state: ImLogFolderState) -> None:
        watch, state.watch = state.watch, None
        if watch is not None:
            watch.stop()

    # --- remote --------------------------------------------------------------------------------
    def _remote(self, ctx: Context, settings: ImLogFolderSettings) -> FolderView:
        configured = (settings.path or "").strip()
        folder = configured or ntpath.join(self._install_path(ctx), IM_LOG_SUBFOLDER)
        answer = ctx.run("windows", "Get-ChildItem", {"LiteralPath": folder, "File": None}, FILE_SHAPE,
                         accept_error_ids=(PATH_NOT_FOUND,))
        ledger = ctx.state.ledger
        # Asked for a file rather than a folder, Get-ChildItem answers with the file itself.
        present = PATH_NOT_FOUND not in answer.error_ids() and not any(
            _same_windows_path(obj.get("FullName"), folder) for obj in answer.objects)
        if present:
            ledger.reconcile(listing_of(answer.objects, f"{ctx.where('windows')} Get-ChildItem {folder}"))
            return FolderView.of(ledger, True, True)
        ledger.reconcile({})
        if not configured:
            ctx.state.install_path = None  # read again next run, in case Exchange moved
        parent = ntpath.dirname(folder.rstrip("\\"))
        found = ctx.run("windows", "Get-Item", {"LiteralPath": parent}, ITEM_SHAPE, accept_error_ids=(PATH_NOT_FOUND,))
        return FolderView.of(ledger, False, bool(found.objects) and PATH_NOT_FOUND not in found.error_ids())

    def _install_path(self, ctx: Context) -> str:
        """Exchange's install folder from its setup key, read once per job."""
        cached = ctx.state.install_path
        if cached:
            return cached
        where = f"{ctx.where('windows')} Get-ItemProperty {EXCHANGE_SETUP_KEY}"
        answer = ctx.run("windows", "Get-ItemProperty", {"LiteralPath": EXCHANGE_SETUP_KEY}, SETUP_KEY_SHAPE,
                         accept_error_ids=(PATH_NOT_FOUND,))
        if not answer.objects:
            raise CollectError(ErrorKind.COMMAND, where,
                              "the Exchange setup key is missing (Exchange 2013 or later not installed?); "
                              "set `path` in the im_log_folder settings")
        install_path = clean_text(answer.objects[0].get("MsiInstallPath")).strip('"')
        if not _WINDOWS_ABSOLUTE.match(install_path):
            raise CollectError(ErrorKind.SHAPE, where, "MsiInstallPath is missing or not an absolute Windows path")
        ctx.state.install_path = install_path
        return install_path

    # --- local ---------------------------------------------------------------------------------
    def _local(self, ctx: Context, settings: ImLogFolderSettings) -> FolderView:
        path = (settings.path or "").strip()
        try:
            watch = ctx.state.watch
            if watch is None:
                watch = LocalFolder(path, settings.observer, settings.poll_interval)
                ctx.state.watch = watch  # before start(): close() must stop it whatever happens
                return watch.start()
            return watch.refresh()
        except OSError as exc:
            kind = ErrorKind.AUTH if isinstance(exc, PermissionError) else ErrorKind.UNREACHABLE
            reason = exc.strerror or type(exc).__name__
            raise CollectError(kind, f"local folder {path}", f"cannot read it: {reason}") from None


def samples_of(view: FolderView) -> list[Sample]:
    samples = [
        PRESENT.sample(1 if view.present else 0),
        PARENT_PRESENT.sample(1 if view.parent_present else 0),
        FILES.sample(view.files),
        BYTES.sample(view.bytes),
        WRITTEN.sample(view.written_bytes),
    ]
    if view.newest_write is not None:
        samples.append(NEWEST_WRITE.sample(view.newest_write))
    return samples


def listing_of(objects: list[dict[str, Any]], where: str = "Get-ChildItem") -> dict[str, FileState]:
    """Get-ChildItem objects -> name (lower case: NTFS names ignore case) -> FileState."""
    listing: dict[str, FileState] = {}
    for obj in objects:
        name = clean_text(obj["Name"]).lower()
        size = obj["Length"]
        if not name or size < 0:
            raise CollectError(ErrorKind.SHAPE, where, "a file with an empty Name or a negative Length")
        created, modified = obj.get("CreationTimeUtc"), obj.get("LastWriteTimeUtc")
        listing[name] = FileState(
            size,
            identity=created.timestamp() if created is not None else None,
            modified=modified.timestamp() if modified is not None else None,
        )
    return listing


def _same_windows_path(a: Any, b: str) -> bool:
    if not isinstance(a, str):
        return False
    return ntpath.normcase(ntpath.normpath(clean_text(a))) == ntpath.normcase(ntpath.normpath(b.strip()))
