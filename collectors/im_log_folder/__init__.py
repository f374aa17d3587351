"""Check E2: the IM log folder exists and grows (collector ``im_log_folder``).

``collector`` (settings, remote listing, local watching), ``accounting`` (bytes written, never
backwards), ``watch`` (the local folder under watchdog)."""
