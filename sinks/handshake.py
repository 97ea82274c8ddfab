"""Handshake failures of a ZeroMQ connection, seen through a socket monitor.

Without it a subscriber with a wrong CURVE server key waits forever: ZeroMQ retries the
handshake quietly. The monitor reports each attempt: the publisher refused the client's
key (``HANDSHAKE_FAILED_AUTH``), one side uses CURVE and the other does not
(``HANDSHAKE_FAILED_PROTOCOL``), or the publisher hung up because it could not decrypt
the hello, i.e. the server key is not its own (``HANDSHAKE_FAILED_NO_DETAIL``, a few in a
row, about 0.1 s apart).
"""

from __future__ import annotations

import logging

import zmq
from zmq.utils.monitor import recv_monitor_message

from pipeline.core.errors import VidpipeError

log = logging.getLogger("vidpipe.subscriber")

EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
          | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
NO_DETAIL_TRIES = 3  # one hang-up may be a publisher restarting; three in a row are the key


class HandshakeError(VidpipeError):
    """The publisher and this client could not agree on a connection (CURVE keys)."""


class HandshakeMonitor:
    """Watches ``sock``'s handshakes; ``check()`` reads what happened since the last call."""

    def __init__(self, sock: zmq.Socket, url: str, curve: bool, fail: bool) -> None:
        self.sock, self.url, self.curve, self.fail = sock, url, curve, fail
        self.socket: zmq.Socket | None = sock.get_monitor_socket(EVENTS)
        self.failures = 0
        self.error: str | None = None  # the last failure, as one line
        self._hang_ups = 0

    def why(self, event: int, value: int) -> str | None:
        """One line on a failed handshake, or None for a hang-up that may be a one-off."""
        side = "" if self.curve else " (this client has no CURVE keys)"
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return (f"the publisher at {self.url} refused this client's CURVE key (status {value}): "
                    "is its public key among the publisher's allowed clients?")
        if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                return f"the publisher at {self.url} and this client disagree on CURVE: one side uses it{side}"
            return f"handshake with {self.url} failed: protocol error {value:#x}{side}"
        self._hang_ups += 1
        if self._hang_ups < NO_DETAIL_TRIES:
            return None
        hung_up = f"the publisher at {self.url} hung up on {self._hang_ups} handshakes in a row"
        if not self.curve:
            return f"{hung_up}: does it require CURVE? (this client has no CURVE keys)"
        return f"{hung_up}: is the CURVE server public key the publisher's?"

    def check(self) -> None:
        """Count failures; raise :class:`HandshakeError` if ``fail``, else log the first."""
        while self.socket is not None and self.socket.poll(0):
            event = recv_monitor_message(self.socket)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._hang_ups = 0
                continue
            why = self.why(event["event"], event["value"])
            if why is None:
                continue
            self.failures += 1
            if self.fail:
                self.error = why
                raise HandshakeError(why)
            if self.error is None:
                log.error("%s", why)
            self.error = why

    def close(self) -> None:
        if self.socket is not None:
            self.sock.disable_monitor()
            self.socket.close(0)
            self.socket = None
