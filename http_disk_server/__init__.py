"""HTTP/1.1 disk server: ranged reads and durable writes to a block device, a file, or a
Hexz snapshot (read-only). Command line: ``http-disk-server`` (see __main__.py).

Modules: body (request bodies), backend (storage
interface), fileio (file and block device backend), snapshot (Hexz backend), auth (Basic
auth), drbd (waiting for a DRBD Primary), handler (HTTP routes), server (connections and
graceful stop), service (assembly, usable in-process), __main__ (CLI). Range and
Content-Range parsing: nbdsuite.httprange.
"""
