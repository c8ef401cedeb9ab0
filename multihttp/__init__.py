"""multihttp: one NBD disk over several HTTP disk servers, with failover.

Modules, one job each:
  params    plugin parameters (urls=, user=, password= forms, device-size=, timeouts)
  errors    failures and the errno each maps to
  wire      minimal HTTP/1.1 client connection (the data path)
  request   one checked exchange: HEAD, OPTIONS, ranged GET, PUT, PATCH
  pool      keep-alive connections per server
  server    one server: its Endpoint (target, auth, label), what is known of it, and
            how its failures read
  probe     server selection: HEAD/OPTIONS checks, size agreement
  runner    one request over the server list: retries, backoff, failover (also used by
            hxz's HttpSource)
  failover  the client: NBD requests through a runner, write queries, flush bookkeeping

nbd-http-server, which runs nbdkit with this plugin and attaches /dev/nbdX, is the
separate package nbd_http_server.
"""
