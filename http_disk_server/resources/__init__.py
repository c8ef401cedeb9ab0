"""The resources of the disk API, in the manner of ovirt-imageio's ``handlers/``:
``images`` (ranged reads, writes, zero and flush of one backend), ``extents`` (its
allocation map) and ``info`` (metadata, and ``OPTIONS *``)."""
