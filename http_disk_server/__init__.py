"""HTTP/1.1 disk server: ranged reads and durable writes to a block device, a file, or a
Hexz snapshot (read-only); or a folder of them as a read-only S3 bucket. Command line:
``http-disk-server`` (see __main__.py).

Storage: backend (the interface), fileio (file and block device backends, ``open()``),
snapshot (Hexz streams), storage (what is served, or why not yet), drbd (waiting for a
DRBD Primary), writes (write admission and shutdown bookkeeping).
HTTP: handler (the protocol through CPython's do_* hooks), framing (body length, headers
that may appear once), body (reading bodies), connection (100-continue, lingering close),
streaming (sendfile or pread bodies), deadline (Write-Deadline), exchange (Request and
Response), router (paths to resources; failures to statuses, via errors), resources/
(images, extents, info), auth (Basic auth), redact (credentials out of logged targets).
S3: s3/ (``--s3 DIR``: a read-only bucket over the same backends; see s3/__init__.py).
Assembly: config, server (connections and graceful stop), service (in-process server),
__main__ (CLI). Byte-range grammar: nbdsuite.httprange.
"""
