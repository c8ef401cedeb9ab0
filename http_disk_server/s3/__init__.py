"""The read-only S3 face of http-disk-server (``--s3 DIR``).

A second router over the same backends as the disk API: every raw image and every
``.hxz`` archive in DIR becomes objects of one bucket. The modules, one job each:

  catalog.py      which objects DIR holds (keys, sizes, ETags, backends)
  credentials.py  the access keys, read from a file
  sigv4.py        AWS Signature Version 4 verification (headers and presigned URLs)
  listing.py      ListObjectsV2 / ListObjects paging, prefixes and delimiters
  conditions.py   If-Match / If-None-Match / If-(Un)Modified-Since and Range
  xml.py          XML bodies of replies and errors
  errors.py       S3 error codes, and other failures mapped onto them
  app.py          the router: operations, authentication, read-only refusals
"""
