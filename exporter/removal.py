"""Taking the remote sessions no job uses any more out of a running exporter (a reload).

Releasing them is the session pool's own operation (``SessionPool.release_unused``); the name stays
for the runtime that builds its pool from here. (The snapshot store forgets a job itself:
SnapshotStore.unregister.)
"""

from __future__ import annotations

from collectors.sources.remoting import SessionPool

ReleasableSessionPool = SessionPool
