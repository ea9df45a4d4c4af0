# Run by nbdsh --base-allocation -u URI against an empty 8 MiB disk with
# 64 KiB blocks. Exercises every command and flag the server advertises.
import os

bs = h.get_block_size(nbd.SIZE_PREFERRED)
size = h.get_size()
assert bs == 65536, bs
assert size == 8 << 20, size
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1
for cap in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
            "can_cache", "can_multi_conn"):
    assert getattr(h, cap)(), cap
assert not h.is_read_only()
assert h.can_meta_context("base:allocation")

def extents(off, length, flags=0):
    got = []
    def cb(metacontext, offset, entries, err):
        assert metacontext == "base:allocation", metacontext
        got.extend(zip(entries[0::2], entries[1::2]))
    h.block_status(length, off, cb, flags)
    return got

# A fresh disk is one hole that reads as zeroes.
assert h.pread(1000, 12345) == bytes(1000)
ext = extents(0, size)
assert ext[0][1] == 3, ext  # HOLE|ZERO
assert sum(l for l, _ in ext) <= size

# Unaligned write spanning three blocks, read back.
data = os.urandom(2 * bs + 100)
h.pwrite(data, bs // 2)
assert h.pread(len(data), bs // 2) == data
assert h.pread(bs // 2, 0) == bytes(bs // 2)

# Blocks 0..2 hold data now, block 3 onwards is a hole.
ext = extents(0, 4 * bs)
assert ext[0] == (3 * bs, 0), ext
assert ext[1][1] == 3, ext
# REQ_ONE: a single extent.
assert len(extents(0, 4 * bs, nbd.CMD_FLAG_REQ_ONE)) == 1

# FUA write and flush.
h.pwrite(b"fua!" * 16, 100, nbd.CMD_FLAG_FUA)
assert h.pread(64, 100) == b"fua!" * 16
h.flush()

# Write zeroes over whole blocks 1 and 2 (with NO_HOLE, then FAST_ZERO):
# they read back as zeroes; s3backer's format cannot store zero blocks.
h.zero(bs, bs, nbd.CMD_FLAG_NO_HOLE)
h.zero(bs, 2 * bs, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_FUA)
assert h.pread(2 * bs, bs) == bytes(2 * bs)
assert extents(bs, 2 * bs)[0] == (2 * bs, 3)

# Partial zero keeps the rest of block 0.
h.zero(100, 0)
h.zero(64, 100)
assert h.pread(64, 100) == bytes(64)
assert h.pread(bs // 2, bs // 2) == data[:bs // 2]

# Trim blocks 4, 5 and the start of 6: zeroes afterwards, the rest of 6 kept.
h.pwrite(b"\x07" * (3 * bs), 4 * bs)
h.trim(2 * bs + 10, 4 * bs)
assert h.pread(2 * bs + 10, 4 * bs) == bytes(2 * bs + 10)
assert h.pread(bs - 10, 6 * bs + 10) == b"\x07" * (bs - 10)

# Cache is accepted.
h.cache(bs * 2, 0)

# Last block, then out-of-range requests fail with EINVAL.
h.pwrite(b"\xff" * 10, size - 10)
assert h.pread(10, size - 10) == b"\xff" * 10
h.set_strict_mode(0)
for op in (lambda: h.pread(2, size - 1), lambda: h.pwrite(b"ab", size - 1)):
    try:
        op()
        raise SystemExit("out-of-range request succeeded")
    except nbd.Error as e:
        assert e.errno in ("EINVAL", "ENOSPC"), e
h.flush()
print("all commands ok")
