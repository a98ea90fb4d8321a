"""Who holds a migration lock: :class:`LockHolder`, as the waiting line, ``db status``
and ``db doctor`` show it.

A module of its own, imported only when someone asks who holds a lock: :mod:`.lock`
runs in every ``upgrade``, and creating this dataclass costs ~5 million instructions
(~1.5 ms) that a command which never waits should not pay.
"""
from __future__ import annotations

import dataclasses
import datetime
import typing as t


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """The process holding a migration lock, as far as the database tells.

    Built only from parts that cannot hold a password: the name the holding session
    gave itself (``application_name`` on PostgreSQL, ours is ``flask-migrate-compat db
    <command> <host>:<pid>``), the server's process or connection id, the client's
    address and the time the lock was taken.

    :ivar name: what the holder calls itself, or ``None`` when unknown.
    :ivar pid: the server process id of the holding session (PostgreSQL), or the
        holder's own process id (SQLite).
    :ivar client: the client address (``host`` or ``host:port``), or ``None``.
    :ivar since: when it took the lock (local time), or ``None``.
    :ivar connection_id: the holding connection's id (MySQL/MariaDB, which show no
        name: their connection attributes need the performance schema).
    """

    name: str | None = None
    pid: int | None = None
    client: str | None = None
    since: datetime.datetime | None = None
    connection_id: int | None = None

    def describe(self) -> str:
        """One line: ``<name> (pid 567 on 127.0.0.1, since 12:01:02)``, or on
        MySQL/MariaDB ``connection 42 from 127.0.0.1:50522 (since 12:01:02)``."""
        parts = []
        if self.pid is not None:
            where = f" on {self.client}" if self.client else ""
            parts.append(f"pid {self.pid}{where}")
        if self.since is not None:
            parts.append(f"since {self.since.strftime('%H:%M:%S')}")
        if self.name:
            name = self.name
        elif self.connection_id is not None:
            name = f"connection {self.connection_id}"
            if self.client:
                name += f" from {self.client}"
        else:
            name = "another process"
        return f"{name} ({', '.join(parts)})" if parts else name

    def as_dict(self) -> dict[str, t.Any]:
        """The holder as JSON-ready values (``since`` in ISO 8601)."""
        return {
            "name": self.name, "pid": self.pid, "connection_id": self.connection_id,
            "client": self.client,
            "since": self.since.isoformat(timespec="seconds") if self.since else None,
            "description": self.describe(),
        }
