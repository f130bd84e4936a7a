"""The two kernel reads device counting needs, straight over netlink: nftables set counters, the neighbour table.

`nft -j list set` costs 11-16 ms of CPU for 1000 elements (libnftables builds an expression tree per element
and prints it); one netlink dump parsed here costs about 1.5 ms, so a collector can read every second.
Only reads: the table and its rules are written with `nft -f` (nft_table.py), rarely.
"""
import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE, NFT_MSG_GETSETELEM = 1, 13
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NFPROTO_INET = 1
NLA_TYPE_MASK = 0x3FFF  # without the nested / byte-order flags
NFTA_TABLE_NAME, NFTA_TABLE_HANDLE = 1, 4
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_EXPR, NFTA_SET_ELEM_EXPRESSIONS = 1, 7, 11
NFTA_DATA_VALUE = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS = 1, 2
_HDR = struct.Struct("=IHHII")  # nlmsghdr
_NLA = struct.Struct("=HH")
_U64 = struct.Struct(">Q")
RCVBUF = 1 << 20


class NetlinkError(OSError):
    pass


def _attr(kind, payload):
    length = 4 + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _attrs(buf, start=0, end=None):
    """{type: payload} of the attributes in buf[start:end] (the last of a repeated type)."""
    out, end = {}, len(buf) if end is None else end
    while start + 4 <= end:
        length, kind = _NLA.unpack_from(buf, start)
        if length < 4:
            break
        out[kind & NLA_TYPE_MASK] = (start + 4, start + length)
        start += (length + 3) & ~3
    return out


def _each(buf, start, end):
    """(start, end) of every attribute in buf[start:end]."""
    while start + 4 <= end:
        length, _ = _NLA.unpack_from(buf, start)
        if length < 4:
            return
        yield start + 4, start + length
        start += (length + 3) & ~3


class Reader:
    """One netlink socket to this network namespace's nf_tables; read-only requests."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.sock.bind((0, 0))
        self.seq = 0
        self._layouts = {}  # element length -> (key offset, key length, key header, counter offset)

    def close(self):
        self.sock.close()

    def _request(self, msg_type, flags, payload):
        self.seq += 1
        body = struct.pack("=BBH", NFPROTO_INET, 0, 0) + payload
        kind = (NFNL_SUBSYS_NFTABLES << 8) | msg_type
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | flags, self.seq, 0) + body)
        return self.seq

    def _replies(self, seq):
        """The payloads (after nfgenmsg) of every reply message, until DONE or the single answer."""
        while True:
            data = self.sock.recv(RCVBUF)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, flags, got_seq, _ = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    return
                if got_seq == seq:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        code = struct.unpack_from("=i", data, offset + _HDR.size)[0]
                        if code:
                            raise NetlinkError(-code, os.strerror(-code))
                        return
                    yield data, offset + _HDR.size + 4, offset + length
                    if not flags & 0x2:  # NLM_F_MULTI not set: a single answer
                        return
                offset += (length + 3) & ~3

    def table_handle(self, table):
        """The kernel's handle of an inet table (a new one after it was deleted and made again); None when absent."""
        seq = self._request(NFT_MSG_GETTABLE, NLM_F_ACK, _attr(NFTA_TABLE_NAME, table.encode() + b"\0"))
        try:
            for buf, start, end in self._replies(seq):
                found = _attrs(buf, start, end).get(NFTA_TABLE_HANDLE)
                return _U64.unpack_from(buf, found[0])[0] if found else None
        except NetlinkError as exc:
            if exc.errno == 2:  # ENOENT
                return None
            raise
        return None

    def set_counters(self, table, name):
        """{key bytes: (bytes, packets)} of a set's elements with a counter; NetlinkError ENOENT when absent."""
        payload = (_attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
                   + _attr(NFTA_SET_ELEM_LIST_SET, name.encode() + b"\0"))
        out = {}
        for buf, start, end in self._replies(self._request(NFT_MSG_GETSETELEM, NLM_F_DUMP, payload)):
            elements = _attrs(buf, start, end).get(NFTA_SET_ELEM_LIST_ELEMENTS)
            if elements is not None:
                self._elements(buf, *elements, out)
        return out

    def _elements(self, buf, a, end, out):
        """Every element of one message. The elements of a set share one layout: once one has been parsed attribute
        by attribute, a message of elements of that length is unpacked in one struct call and its attribute headers
        checked (half the cost with 1000 elements); anything else is parsed attribute by attribute."""
        if a + 4 > end:
            return
        known = self._layouts.get(_NLA.unpack_from(buf, a)[0])
        if known is not None and (end - a) % known[0].size == 0:
            layout, headers = known
            rows = list(layout.iter_unpack(buf[a:end]))
            if all(r[0] == headers[0] and r[1] == headers[1] and r[3] == _BYTES_HDR and r[5] == _PACKETS_HDR
                   for r in rows):
                for r in rows:
                    out[r[2]] = (r[4], r[6])
                return
        while a + 4 <= end:
            length = _NLA.unpack_from(buf, a)[0]
            if length < 4:
                return
            found = _element(buf, a + 4, a + length)
            if found is not None:
                key_at, key_len, counter_at = found
                out[bytes(buf[key_at:key_at + key_len])] = (_U64.unpack_from(buf, counter_at)[0],
                                                            _U64.unpack_from(buf, counter_at + 12)[0])
                self._learn(buf, a, length, key_at, key_len, counter_at)
            a += (length + 3) & ~3

    def _learn(self, buf, a, length, key_at, key_len, counter_at):
        """Remember where key and counter sit in an element of this length (aligned elements only)."""
        if length in self._layouts or length % 4:
            return
        gap1, gap2 = key_at - 4 - (a + 4), counter_at - 4 - (key_at + key_len)
        tail = length - (counter_at + 20 - a)
        layout = struct.Struct(f">4s{gap1}x4s{key_len}s{gap2}x4sQ4sQ{tail}x")
        self._layouts[length] = (layout, (bytes(buf[a:a + 4]), bytes(buf[key_at - 4:key_at])))


_BYTES_HDR = _NLA.pack(12, NFTA_COUNTER_BYTES)
_PACKETS_HDR = _NLA.pack(12, NFTA_COUNTER_PACKETS)


def _element(buf, a, b):
    """(offset of the key, its length, offset of the counter's bytes value) of one element, None without a counter."""
    fields = _attrs(buf, a, b)
    key = fields.get(NFTA_SET_ELEM_KEY)
    if key is None:
        return None
    value = _attrs(buf, *key).get(NFTA_DATA_VALUE)
    exprs = [fields[NFTA_SET_ELEM_EXPR]] if NFTA_SET_ELEM_EXPR in fields else \
        list(_each(buf, *fields[NFTA_SET_ELEM_EXPRESSIONS])) if NFTA_SET_ELEM_EXPRESSIONS in fields else []
    for x, y in exprs:
        expr = _attrs(buf, x, y)
        name = expr.get(NFTA_EXPR_NAME)
        if name and bytes(buf[name[0]:name[1]]).rstrip(b"\0") == b"counter" and NFTA_EXPR_DATA in expr:
            counter = _attrs(buf, *expr[NFTA_EXPR_DATA])
            at = counter.get(NFTA_COUNTER_BYTES)
            if at is None or counter.get(NFTA_COUNTER_PACKETS) != (at[0] + 12, at[0] + 20):
                return None
            return value[0], value[1] - value[0], at[0]
    return None


NETLINK_ROUTE, RTM_GETNEIGH = 0, 30
NDA_DST, NDA_LLADDR = 1, 2
_NDMSG = struct.Struct("=BxxxiHBB")
NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP = 0x20, 0x01, 0x40


def neighbours(ifindexes=None):
    """{address: MAC} of the kernel's neighbour table (IPv4 ARP and IPv6 ND), entries with a link address only;
    with ifindexes, only the neighbours on those interfaces."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        body = _NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        sock.send(_HDR.pack(_HDR.size + len(body), RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
        out = {}
        while True:
            data = sock.recv(RCVBUF)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, _, _, _ = _HDR.unpack_from(data, offset)
                if kind in (NLMSG_DONE, NLMSG_ERROR) or length < _HDR.size:
                    return out
                family, ifindex, state, _, _ = _NDMSG.unpack_from(data, offset + _HDR.size)
                fields = _attrs(data, offset + _HDR.size + _NDMSG.size, offset + length)
                dst, ll = fields.get(NDA_DST), fields.get(NDA_LLADDR)
                if dst and ll and ll[1] - ll[0] == 6 and not state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NOARP) \
                        and (ifindexes is None or ifindex in ifindexes):
                    addr = socket.inet_ntop(family, data[dst[0]:dst[1]])
                    out[addr] = ":".join(f"{b:02x}" for b in data[ll[0]:ll[1]])
                offset += (length + 3) & ~3
    finally:
        sock.close()
