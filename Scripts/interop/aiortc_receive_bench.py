#!/usr/bin/env python3
"""Reference for meetkit-bench: aiortc's per-packet receive path, timed in one process.

For each SRTP profile, protects COUNT Opus-sized RTP packets once, then times what aiortc
does with each arriving packet before its jitter buffer: pylibsrtp unprotect (as
RTCDtlsTransport does), RtpPacket.parse with the header-extension map, and the codec's
depayload. Median of ROUNDS rounds, each with a fresh inbound session.
Prints one JSON line: {"AES-GCM": packets_per_second, "AES-CM": packets_per_second}.
"""
import json
import os
import statistics
import sys
import time

from pylibsrtp import Policy, Session
from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
PROFILES = {
    "AES-GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 12),
    "AES-CM": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 14),
}
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def measure(profile, salt_length):
    key = bytes(range(16)) + bytes(100 + i for i in range(salt_length))
    sender = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    payload = os.urandom(80)
    wire = []
    for i in range(COUNT):
        packet = RtpPacket(payload_type=111, sequence_number=i & 0xFFFF, timestamp=(i * 960) & 0xFFFFFFFF, ssrc=7)
        packet.payload = payload
        wire.append(sender.protect(packet.serialize()))
    extensions = HeaderExtensionsMap()
    times = []
    for _ in range(ROUNDS):
        receiver = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
        start = time.perf_counter()
        frames = 0
        for data in wire:
            packet = RtpPacket.parse(receiver.unprotect(data), extensions)
            if depayload(OPUS, packet.payload):
                frames += 1
        times.append(time.perf_counter() - start)
        assert frames == COUNT
    return COUNT / statistics.median(times)


print(json.dumps({name: measure(*spec) for name, spec in PROFILES.items()}))
