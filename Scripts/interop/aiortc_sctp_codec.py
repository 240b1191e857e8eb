"""SCTP packets checked against aiortc's own codec (aiortc.rtcsctptransport).

Line protocol on stdin/stdout, one JSON object per line:
  {"parse": "<hex>"}  -> {"ok": true, "ports": [src, dst], "tag": n, "chunks": [...]}
                         or {"ok": false, "error": "..."} (aiortc refused it)
  {"emit": true}      -> {"packets": ["<hex>", ...]} packets serialized by aiortc's chunk
                         classes, with the checksum as aiortc writes it
Each parsed chunk is described by its type and the fields aiortc read.
"""

import json
import sys
from struct import pack

from aiortc import rtcsctptransport as s


def describe(chunk):
    d = {"type": chunk.type, "flags": chunk.flags}
    if isinstance(chunk, s.DataChunk):
        d.update(tsn=chunk.tsn, stream=chunk.stream_id, ssn=chunk.stream_seq,
                 ppid=chunk.protocol, data=chunk.user_data.hex())
    elif isinstance(chunk, s.BaseInitChunk):
        d.update(tag=chunk.initiate_tag, rwnd=chunk.advertised_rwnd,
                 outbound=chunk.outbound_streams, inbound=chunk.inbound_streams,
                 tsn=chunk.initial_tsn, params=[[t, v.hex()] for t, v in chunk.params])
    elif isinstance(chunk, s.SackChunk):
        d.update(cum=chunk.cumulative_tsn, rwnd=chunk.advertised_rwnd,
                 gaps=[list(g) for g in chunk.gaps], dups=chunk.duplicates)
    elif isinstance(chunk, s.ForwardTsnChunk):
        d.update(cum=chunk.cumulative_tsn, streams=[list(x) for x in chunk.streams])
    elif isinstance(chunk, s.BaseParamsChunk):
        d.update(params=[[t, v.hex()] for t, v in chunk.params])
    elif isinstance(chunk, s.ShutdownChunk):
        d.update(cum=chunk.cumulative_tsn)
    else:
        d.update(body=bytes(chunk)[4:].hex())
    return d


def packet(tag, *chunks):
    data = pack("!HHL", 5000, 5000, tag) + b"\x00\x00\x00\x00"
    for chunk in chunks:
        data += bytes(chunk)
    checksum = s.crc32c(data)
    return data[0:8] + pack("<L", checksum) + data[12:]


def emitted():
    init = s.InitChunk()
    init.initiate_tag = 0x01020304
    init.advertised_rwnd = 131072
    init.outbound_streams = 65535
    init.inbound_streams = 65535
    init.initial_tsn = 4000000000
    init.params = [(0xC000, b""), (0x8008, bytes([0x82, 0xC0]))]
    data = s.DataChunk(flags=0x03)
    data.tsn, data.stream_id, data.stream_seq, data.protocol = 7, 1, 2, 51
    data.user_data = b"hello"
    sack = s.SackChunk()
    sack.cumulative_tsn, sack.advertised_rwnd = 100, 5000
    sack.gaps = [(2, 3), (6, 6)]
    sack.duplicates = [99]
    fwd = s.ForwardTsnChunk()
    fwd.cumulative_tsn = 200
    fwd.streams = [(1, 5), (3, 0)]
    reconfig = s.ReconfigChunk()
    reconfig.params = [(13, bytes(s.StreamResetOutgoingParam(
        request_sequence=10, response_sequence=9, last_tsn=199, streams=[1, 3])))]
    return [packet(0, init), packet(9, data), packet(9, sack, fwd), packet(9, reconfig)]


for line in sys.stdin:
    request = json.loads(line)
    if "parse" in request:
        try:
            src, dst, tag, chunks = s.parse_packet(bytes.fromhex(request["parse"]))
            reply = {"ok": True, "ports": [src, dst], "tag": tag, "chunks": [describe(c) for c in chunks]}
        except Exception as error:  # aiortc refuses with ValueError
            reply = {"ok": False, "error": str(error)}
    else:
        reply = {"packets": [p.hex() for p in emitted()]}
    print(json.dumps(reply), flush=True)
