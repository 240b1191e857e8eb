#!/usr/bin/python3
"""An independent WebRTC peer (GStreamer's webrtcbin, Debian's 1.22) for MeetKit's interop tests.

Run with Debian's /usr/bin/python3 (python3-gi and the GStreamer typelibs are Debian packages).
One JSON object per line on stdin/stdout, as Scripts/interop/aiortc_peer.py:
  out {"type": "offer", "sdp"} ; in {"type": "answer", "sdp"}
webrtcbin offers with bundle-policy max-bundle, so every media section after the first is
`m=... 0` with `a=bundle-only` (RFC 8843 §6); --data-channel adds an m=application section.
It sends a 440 Hz tone (Opus) and a moving ball (VP8), counts the audio and video buffers it
decodes from the peer until a {"type": "stop"} line arrives (or --seconds pass), and prints
  {"type": "done", "audio_frames": n, "video_frames": n, "state": "...", "ice": "..."}.
Only 127.0.0.1 is gathered and no STUN server is configured: nothing leaves the machine.
webrtcbin trickles its candidates; this script waits for gathering to end and puts them in
the offer it prints, so the peer gets one complete description.
"""
import argparse
import json
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

SEND = (
    "audiotestsrc is-live=true wave=sine freq=440 volume=0.4 ! audioconvert ! audioresample ! "
    "opusenc frame-size=20 ! rtpopuspay pt=111 ! "
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! webrtc. "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
    "videoconvert ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! "
    "application/x-rtp,media=video,encoding-name=VP8,payload=96 ! webrtc. "
    "webrtcbin name=webrtc bundle-policy=max-bundle"
)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Peer:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.parse_launch(SEND)
        self.webrtc = self.pipeline.get_by_name("webrtc")
        # Keep a reference to the ICE object for the whole run: 1.22's "ice-agent" getter hands
        # Python one reference too few, and dropping the wrapper would free webrtcbin's agent.
        self.ice = self.webrtc.get_property("ice-agent")
        agent = self.ice.get_property("agent")
        address = Nice.Address.new()
        address.set_from_string("127.0.0.1")
        agent.add_local_address(address)
        self.counts = {"audio": 0, "video": 0}
        self.candidates = []  # (mline index, "candidate:...")
        self.offer = None
        self.offered = False
        self.channel = None
        self.webrtc.connect("on-ice-candidate", self.on_candidate)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("pad-added", self.on_pad)

    # --- offer -------------------------------------------------------------------------

    def start(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        if self.args.data_channel:
            self.channel = self.webrtc.emit("create-data-channel", "chat", None)
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer(self, promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        self.offer = offer.sdp.as_text()
        done = Gst.Promise.new()
        self.webrtc.emit("set-local-description", offer, done)
        done.interrupt()

    def on_candidate(self, _element, mline, candidate):
        self.candidates.append((mline, candidate))

    def on_gathering(self, *_):
        state = self.webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.offered:
            GLib.idle_add(self.print_offer)

    def print_offer(self):
        if self.offered or self.offer is None:
            return False
        self.offered = True
        # Candidates go after the section they were gathered for (all of them: one BUNDLE).
        lines = self.offer.rstrip("\r\n").split("\r\n")
        out, section = [], -1
        for line in lines:
            if line.startswith("m="):
                out.extend(self.section_candidates(section))
                section += 1
            out.append(line)
        out.extend(self.section_candidates(section))
        emit({"type": "offer", "sdp": "\r\n".join(out) + "\r\n"})
        return False

    def section_candidates(self, index):
        if index < 0:
            return []
        return ["a=" + c for m, c in self.candidates if m == index] + (["a=end-of-candidates"] if index == 0 else [])

    # --- answer and media ----------------------------------------------------------------

    def apply_answer(self, text):
        ok, sdp = GstSdp.SDPMessage.new_from_text(text)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        promise = Gst.Promise.new()
        self.webrtc.emit("set-remote-description", answer, promise)
        promise.interrupt()

    def on_pad(self, _element, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self.on_decoded)
        self.pipeline.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_decoded(self, _decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        kind = "audio" if name.startswith("audio") else "video"
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)
        sink.connect("handoff", lambda *_: self.count(kind))
        self.pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def count(self, kind):
        self.counts[kind] += 1

    def finish(self):
        state = self.webrtc.get_property("connection-state")
        ice = self.webrtc.get_property("ice-connection-state")
        emit({"type": "done", "audio_frames": self.counts["audio"], "video_frames": self.counts["video"],
              "state": state.value_nick, "ice": ice.value_nick})
        self.pipeline.set_state(Gst.State.NULL)
        self.loop.quit()
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-channel", action="store_true", help="offer a data channel too")
    parser.add_argument("--seconds", type=float, default=30.0, help="longest wait for the stop line")
    args = parser.parse_args()
    Gst.init(None)
    peer = Peer(args)

    def read_input():
        # First the answer, then the stop line (or end of input, or --seconds).
        line = sys.stdin.readline()
        if line.strip():
            GLib.idle_add(lambda: peer.apply_answer(json.loads(line)["sdp"]) and False)
        timer = threading.Timer(args.seconds, lambda: GLib.idle_add(peer.finish))
        timer.daemon = True
        timer.start()
        sys.stdin.readline()
        timer.cancel()
        GLib.idle_add(peer.finish)

    threading.Thread(target=read_input, daemon=True).start()
    GLib.idle_add(lambda: peer.start() and False)
    peer.loop.run()


if __name__ == "__main__":
    main()
