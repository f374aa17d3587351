"""Taking the remote sessions no job uses any more out of a running exporter (a reload).

The session pool was made for a fixed set of jobs; this subclass adds the one operation a reload needs,
under the lock the base class uses. (The snapshot store forgets a job itself: SnapshotStore.unregister.)
"""

from __future__ import annotations

import threading
import time
from typing import Iterable

from collectors.sources.remoting import EndpointSpec, SessionPool


class ReleasableSessionPool(SessionPool):
    def release_unused(self, wanted: Iterable[EndpointSpec], timeout: float = 10.0) -> int:
        """Close the sessions of endpoints no job asks for any more (a target removed, or changed
        address, account or password), so the servers' shells are not left open until they expire.
        Bounded in time, as at shutdown; returns how many were released."""
        keep = {spec.key: spec for spec in wanted}
        with self._lock:
            unused = [key for key, session in self._sessions.items() if keep.get(key) != session.spec]
            released = [self._sessions.pop(key) for key in unused]
        threads = [threading.Thread(target=session.close, daemon=True) for session in released]
        for thread in threads:
            thread.start()
        end = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(end - time.monotonic(), 0))
        return len(released)
