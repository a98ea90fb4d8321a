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
    <command> pid <pid> on <host>``), the holding process's id, the server's process
    or connection id, the client's address and the time the lock was taken. Two
    process ids are never shown alike: the holder's own (``pid``, the one to look
    for on its host) and the server process serving its session (``backend_pid``,
    the one ``pg_terminate_backend`` takes).

    :ivar name: what the holder calls itself, or ``None`` when unknown.
    :ivar pid: the holding process's own id, on its host (SQLite's holder file
        records it; on PostgreSQL it is in ``name``), or ``None``.
    :ivar client: the client address (``host`` or ``host:port``), or ``None``.
    :ivar since: when it took the lock (local time), or ``None``.
    :ivar connection_id: the holding connection's id (MySQL/MariaDB, which show no
        name: their connection attributes need the performance schema).
    :ivar backend_pid: the id of the server process serving the holding session
        (PostgreSQL), or ``None``.
    """

    name: str | None = None
    pid: int | None = None
    client: str | None = None
    since: datetime.datetime | None = None
    connection_id: int | None = None
    backend_pid: int | None = None

    def describe(self) -> str:
        """One line: on PostgreSQL ``flask-migrate-compat db upgrade pid 4242 on web-7
        (server backend pid 5678, client 10.0.3.7, since 12:01:02)``; on SQLite
        ``flask-migrate-compat db upgrade pid 4242 on web-7 (since 12:01:02)``; on
        MySQL/MariaDB ``connection 42 from 127.0.0.1:50522 (since 12:01:02)``."""
        parts = []
        if self.backend_pid is not None:
            parts.append(f"server backend pid {self.backend_pid}")
            if self.client:
                parts.append(f"client {self.client}")
        elif self.pid is not None and f"pid {self.pid} " not in f"{self.name} ":
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
            "name": self.name, "pid": self.pid, "backend_pid": self.backend_pid,
            "connection_id": self.connection_id,
            "client": self.client,
            "since": self.since.isoformat(timespec="seconds") if self.since else None,
            "description": self.describe(),
        }
