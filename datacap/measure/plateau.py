"""What a run of 1-second rates says: where it changed (a two-level fit), whether it is one level, and which
of its seconds carry a throttled level (measure/throttle.py judges with these).
"""
import statistics

FLAT_TOL = 0.04  # the two halves of a shaper's plateau: the same level within 4 %
TAIL_S = 1.0  # the second after the onset may still carry the old rate (bytes in flight, the estimate's error)
RELEASED_MADS, RELEASED_SHARE = 6, 0.25  # a second this far above the others carries bytes TCP held back


def two_level_split(rates, high, low):
    """Index of the first 'low' bin minimising |error| of a high-then-low fit."""
    above = [abs(r - high) for r in rates]
    below = [abs(r - low) for r in rates]
    cost = sum(below)
    best, best_cost = 0, cost
    for k, (a, b) in enumerate(zip(above, below), 1):
        cost += a - b
        if cost < best_cost:
            best, best_cost = k, cost
    return best


def one_level(bins):
    """Whether the first and second half of these bins sit at the same rate (within FLAT_TOL)."""
    half = len(bins) // 2
    if half < 3:
        return False
    a = statistics.median(x.bytes for x in bins[:half])
    b = statistics.median(x.bytes for x in bins[half:])
    return abs(a - b) <= FLAT_TOL * max(a, b)


def throttled_cap(rates):
    """Seconds above this rate carry the old rate's bytes released late, not the throttled rate."""
    if len(rates) < 3:
        return float("inf")
    mid = statistics.median(rates)
    mad = statistics.median(abs(r - mid) for r in rates)
    return mid + max(RELEASED_MADS * mad, RELEASED_SHARE * mid)


def throttled_seconds(bins, onset):
    """The rates whose mean is the throttled rate: whole seconds from TAIL_S after the onset, not far above the rest."""
    whole = [x.bytes for x in bins if x.wall_start >= onset + TAIL_S]
    cap = throttled_cap(whole)
    return [r for r in whole if r <= cap]


def change_point(bins, high, low):
    """(bin position, wall time, session bytes) where the rate moved from `high` to `low`."""
    rates = [b.bytes for b in bins]
    falling = high > low
    k = two_level_split(rates if falling else [-r for r in rates], high if falling else -high,
                        low if falling else -low)
    k = min(max(k, 0), len(bins) - 1)

    def frac_at_high(b):  # share of the bin spent at the old rate
        return min(max((b.bytes - low) / (high - low), 0.0), 1.0) if high != low else 0.0

    if k > 0 and (1 - frac_at_high(bins[k - 1])) > frac_at_high(bins[k]):
        k -= 1
    b = bins[k]
    f = frac_at_high(b)
    return k, b.wall_start + f, int(b.start_bytes + f * high)
