"""Check E2: the IM log folder exists and grows (collector ``im_log_folder``).

``collector`` (settings, remote listing), ``accounting`` (bytes written, never backwards),
``local_folder`` (local mode: the ledger of a folder kept current by the shared watcher,
:mod:`collectors.sources.folder_watch`)."""
