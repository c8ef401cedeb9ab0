"""multihttp: one NBD disk over several HTTP disk servers, with failover.

Modules, one job each:
  params    plugin parameters (urls=, user=, password= forms, device-size=, timeouts)
  errors    failures and the errno each maps to
  wire      minimal HTTP/1.1 client connection (the data path)
  request   one checked exchange: HEAD, OPTIONS, ranged GET, PUT, PATCH
  pool      keep-alive connections per server
  probe     server selection: HEAD/OPTIONS checks, size agreement
  failover  the client: retries, failover, flush bookkeeping
  wrapper   nbd-http-server (nbdkit + nbd-client orchestration)
  demo      the live chain for `make demo`
"""
