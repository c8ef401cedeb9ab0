"""Remote payload sources for the .hxz reader: HTTP(S) mirrors and S3 objects.

Each source conforms to the PayloadSource protocol of ``hxz.source`` (name, size,
pread, preadv, close); the reader does not know whether its bytes come from a file, a web
server or a bucket.  Modules, one job each:

  settings  parameters shared with the multihttp plugin, plus S3 and parent-url=
  fetch     ranged reads: coalescing, bounded spans, sequential readahead in parallel
  http      HttpSource: mirrors in order of preference, failover, pinned validators
  s3        S3Source: ranged GetObject through botocore (SigV4), pinned ETag
  locator   parents of thin archives next to the child's URL, or mapped by parent-url=
  remote    open_source(): the right source for a path, an http(s):// or an s3:// URL
"""
