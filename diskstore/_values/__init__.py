"""How keys and values become bytes and back: ``Disk`` and ``JSONDisk``, diskcache's
``Disk`` hooks, row modes, the inline payload layout, signing, pickling (and out-of-band
buffers), canonical keys, the identity and source hash of functions, and the garbage
collector pause while a large payload loads.

Holds no connection. May import ``_fs`` and ``_common``.
"""
