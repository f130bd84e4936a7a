"""What a change in a byte counter means: traffic, a wrap, a reset, or nonsense.

The width of a counter is what it has shown, never the Python build's (a 32-bit Python on a
64-bit kernel reads 64-bit counters): one seen above 2**32 - 1 is 64-bit. A drop is a wrap only
when the bytes that wrap implies fit the link in the elapsed time, as vnStat judges it, with an
unknown link taken as WRAP_FALLBACK_BPS; otherwise it is a reset, counted from zero.
"""
U32 = 1 << 32
U64 = 1 << 64
GROWTH_FALLBACK_BPS = 12.5e9  # bytes/s: growth on a link of unknown speed is real up to 100 Gbit/s
WRAP_FALLBACK_BPS = 1.875e8  # bytes/s: a wrap on a link of unknown speed must fit 1.5 Gbit/s (vnStat: 1 Gbit/s)


def delta(old, new, wide, elapsed_s, link_bps):
    """(bytes, reason) for a step from old to new over elapsed_s seconds (None: unknown).

    reason is None for normal growth, else "wrap32", "wrap64", "reset" or "implausible".
    wide: the counter has been seen above 2**32 - 1, so it cannot wrap at 32 bits.
    link_bps: the link's bytes/s, or None when unknown.
    """
    span = elapsed_s if elapsed_s else 1e9  # unknown elapsed (a gap of unknown length): anything fits
    growth_limit = (link_bps or GROWTH_FALLBACK_BPS) * span
    wrap_limit = (link_bps or WRAP_FALLBACK_BPS) * span
    if new >= old:
        d = new - old
        return (d, None) if d <= growth_limit else (0, "implausible")
    wide = wide or old >= U32
    size, reason = (U64, "wrap64") if wide else (U32, "wrap32")
    if old < size and size - old + new <= wrap_limit:
        return size - old + new, reason
    if new <= growth_limit:
        return new, "reset"
    return 0, "implausible"
