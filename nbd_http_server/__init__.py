"""nbd-http-server: nbdkit with the multihttp plugin on a Unix socket, attached as
/dev/nbdX with nbd-client (or, with --no-attach, offered as an NBD URI).

  options   the command line, turned into Options
  wrapper   starting nbdkit, choosing and attaching a device, supervising, cleaning up
  __main__  the program: signals, exit status
"""
