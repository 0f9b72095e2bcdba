"""A small AMI (Asterisk Manager Interface) client.

ARI has no MixMonitor endpoint, so recording goes through AMI. There is no
well-kept synchronous Python AMI client (the old ones are unmaintained or
asyncio-only), so this is a small one of our own: actions correlated to their
responses by ActionID (event lists included), events handed to a callback on
a worker thread, and reconnection with backoff for ever.

Every header value is checked before it is sent: a CR or LF in a value would
let whoever controls it append headers or whole actions, so such a value is
refused with :class:`AmiInjectionError` and nothing is sent.

What comes back is checked too. A message that repeats a header (in any case)
is malformed: were a caller-controlled header ever to carry a line break, the
header it injects (an ``Uniqueid:``) could stand before the real one. Such an
event is ignored, with a warning that names the event and the header and
quotes no value; such a response to one of our actions, or an event of its
event list, makes the action fail as if Asterisk had answered ``Error``. The
one exception is ``ChanVariable`` (and ``DestChanVariable`` and the like):
Asterisk writes one such line per variable when manager.conf sets
``channelvars``. No response recguard relies on (MixMonitor, Getvar, Setvar,
DBGet and its events, StopMixMonitor, Login) repeats a header.
"""

from __future__ import annotations

import itertools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ._reconnect import Reconnecting
from .display import ECHO_LIMIT, printable

log = logging.getLogger(__name__)

Message = dict[str, str]
EventHandler = Callable[[Message], None]


class AmiError(Exception):
    """An action failed: no connection, a timeout, or ``Response: Error``."""


class AmiInjectionError(AmiError, ValueError):
    """A header name or value would break the AMI framing (CR, LF or a bad name)."""


@dataclass
class AmiResponse:
    """A response and, for actions that answer with an event list, its events."""

    headers: Message
    events: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.headers.get("Response", "").lower() in ("success", "goodbye", "follows")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.headers.get(key, default)


def _check_header(name: str, value: str) -> None:
    if not name or not all(c.isalnum() or c in "-_()" for c in name):
        raise AmiInjectionError(f"refused AMI header name {name!r}")
    if "\r" in value or "\n" in value:
        raise AmiInjectionError(f"refused AMI header {name}: its value contains CR or LF")


def encode_action(action: str, action_id: str, headers: Mapping[str, str | list[str]]) -> bytes:
    """One action as bytes on the wire; list values become repeated headers (e.g. Variable)."""
    lines = [("Action", action), ("ActionID", action_id)]
    for name, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append((name, str(item)))
    for name, value in lines:
        _check_header(name, value)
    return ("".join(f"{name}: {value}\r\n" for name, value in lines) + "\r\n").encode("utf-8")


def parse_message(block: str) -> Message:
    """A block of ``Key: Value`` lines; a repeated key keeps its first value
    (the client refuses such a block first: see :func:`repeated_header`)."""
    message: Message = {}
    for line in block.split("\r\n"):
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        message.setdefault(key.strip(), value.strip())
    return message


def repeated_header(block: str) -> str | None:
    """The first header name that ``block`` repeats, compared without case;
    None when it repeats none. ``…ChanVariable`` lines may repeat."""
    seen: set[str] = set()
    for line in block.split("\r\n"):
        if ":" not in line:
            continue
        name = line.partition(":")[0].strip()
        folded = name.lower()
        if folded.endswith("chanvariable"):
            continue
        if folded in seen:
            return name
        seen.add(folded)
    return None


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: AmiResponse | None = None
        self.collecting = False


class AmiClient(Reconnecting):
    """One AMI login kept alive; thread-safe ``action()`` calls."""

    _connect_errors = (OSError, AmiError)

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        secret: str,
        on_event: EventHandler | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[str], None] | None = None,
        events: str = "on",
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        _check_header("Username", user)
        _check_header("Secret", secret)
        super().__init__(on_connect, on_disconnect, backoff_initial, backoff_max)
        self.host = host
        self.port = port
        self.user = user
        self.secret = secret
        self.on_event = on_event
        self.events = events
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = f"rg{id(self) & 0xFFFF:x}-"
        self._events: queue.Queue[Message | None] = queue.Queue()
        self.last_error = ""

    # -- lifecycle -----------------------------------------------------------

    def _workers(self) -> list[tuple[str, Callable[[], None]]]:
        # The callbacks run on a thread of their own: a handler that sends an
        # action waits for a response that only the reader can read.
        return [("ami-reader", self._run), ("ami-events", self._dispatch)]

    def _interrupt(self) -> None:
        self._close_socket()
        self._events.put(None)

    # -- actions -------------------------------------------------------------

    def action(self, action: str, timeout: float = 5.0, **headers: str | list[str]) -> AmiResponse:
        """Send an action and wait for its response; raises AmiError unless it succeeded."""
        response = self.send(action, timeout=timeout, **headers)
        if not response.ok:
            raise AmiError(f"AMI {action} failed: {response.get('Message', 'no message')}")
        return response

    def send(self, action: str, timeout: float = 5.0, **headers: str | list[str]) -> AmiResponse:
        """Send an action and return its response, successful or not."""
        action_id = f"{self._prefix}{next(self._ids)}"
        payload = encode_action(action, action_id, headers)
        if not self.connected.is_set() and action != "Login":
            raise AmiError(f"AMI {action}: not connected to {self.host}:{self.port} ({self.last_error or 'connecting'})")
        return self._exchange(action, action_id, payload, timeout)

    def actions(self, requests: Sequence[tuple[str, Mapping[str, str]]], timeout: float = 5.0) -> list[AmiResponse]:
        """Send several actions at once and wait for all their answers: one
        round trip instead of one each. Raises AmiError unless every one succeeded."""
        if not self.connected.is_set():
            raise AmiError(f"AMI: not connected to {self.host}:{self.port} ({self.last_error or 'connecting'})")
        ids = [f"{self._prefix}{next(self._ids)}" for _ in requests]
        payload = b"".join(encode_action(name, action_id, headers)
                           for (name, headers), action_id in zip(requests, ids))
        pendings = [_Pending() for _ in requests]
        with self._pending_lock:
            self._pending.update(zip(ids, pendings))
        names = ", ".join(name for name, _ in requests)
        try:
            self._send(names, payload)
            deadline = time.monotonic() + timeout
            responses: list[AmiResponse] = []
            for (name, _), pending in zip(requests, pendings):
                if not pending.done.wait(max(0.0, deadline - time.monotonic())):
                    raise AmiError(f"AMI {name}: no response within {timeout:.1f} s")
                assert pending.response is not None
                if not pending.response.ok:
                    raise AmiError(f"AMI {name} failed: {pending.response.get('Message', 'no message')}")
                responses.append(pending.response)
            return responses
        finally:
            with self._pending_lock:
                for action_id in ids:
                    self._pending.pop(action_id, None)

    def _send(self, what: str, payload: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise AmiError(f"AMI {what}: not connected")
        try:
            with self._send_lock:
                sock.sendall(payload)
        except OSError as exc:
            raise AmiError(f"AMI {what}: send failed: {exc}") from exc

    def _exchange(self, action: str, action_id: str, payload: bytes, timeout: float) -> AmiResponse:
        pending = _Pending()
        with self._pending_lock:
            self._pending[action_id] = pending
        try:
            self._send(action, payload)
            if not pending.done.wait(timeout):
                raise AmiError(f"AMI {action}: no response within {timeout:.1f} s")
            assert pending.response is not None
            return pending.response
        finally:
            with self._pending_lock:
                self._pending.pop(action_id, None)

    # -- connection ----------------------------------------------------------

    def _connect(self) -> None:
        """Connect and log in."""
        sock = socket.create_connection((self.host, self.port), timeout=5)
        self._sock = sock
        self._buffer = b""
        banner = self._read_until(sock, b"\r\n")
        if not banner.startswith("Asterisk Call Manager"):
            raise AmiError(f"{self.host}:{self.port} is not an Asterisk manager (it said {banner[:40]!r})")
        sock.settimeout(None)
        login_id = f"{self._prefix}login"
        payload = encode_action(
            "Login", login_id, {"Username": self.user, "Secret": self.secret, "Events": self.events}
        )
        # The reader loop is not running yet: read the login response inline.
        sock.sendall(payload)
        while True:
            block = self._read_until(sock, b"\r\n\r\n")
            message = parse_message(block)
            if message.get("ActionID") == login_id:
                break
        repeated = repeated_header(block)
        if repeated is not None:
            raise AmiError(f"AMI login: malformed response (repeated header {printable(repeated, ECHO_LIMIT)})")
        if message.get("Response", "").lower() != "success":
            raise AmiError(f"AMI login as {self.user!r} refused: {message.get('Message', 'no reason')}")
        self.connected.set()
        if self.on_connect:
            self._events.put({"__recguard__": "connect"})

    def _connect_failed(self, exc: Exception) -> None:
        self.last_error = str(exc)
        self._close_socket()

    def _serve_connection(self) -> str:
        reason = self._serve()
        self.connected.clear()
        self._close_socket()
        self._fail_pending(reason)
        self.last_error = reason
        return reason

    def _disconnected(self, reason: str) -> None:
        if self.on_disconnect:
            self._events.put({"__recguard__": "disconnect", "reason": reason})

    def _read_until(self, sock: socket.socket, end: bytes) -> str:
        """The text up to ``end`` (a line, or a message's blank line), which is consumed."""
        while end not in self._buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise AmiError("connection closed by Asterisk")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(end, 1)
        return text.decode("utf-8", errors="replace")

    def _serve(self) -> str:
        sock = self._sock
        if sock is None:
            return "not connected"
        try:
            while not self._stop.is_set():
                block = self._read_until(sock, b"\r\n\r\n")
                self._route(parse_message(block), repeated_header(block))
        except (OSError, AmiError) as exc:
            return str(exc) or type(exc).__name__
        return "stopped"

    def _route(self, message: Message, repeated: str | None = None) -> None:
        action_id = message.get("ActionID", "")
        with self._pending_lock:
            pending = self._pending.get(action_id)
        if repeated is not None:
            self._malformed(message, repeated, pending)
            return
        if pending is not None:
            if "Response" in message:
                pending.response = AmiResponse(message)
                # An event list follows; the response completes with its last event.
                if message.get("EventList", "").lower() == "start":
                    pending.collecting = True
                    return
                pending.done.set()
                return
            if "Event" in message and pending.collecting and pending.response is not None:
                if message.get("EventList", "").lower() == "complete":
                    pending.done.set()
                else:
                    pending.response.events.append(message)
                return
        if "Event" in message:
            self._events.put(message)

    def _malformed(self, message: Message, repeated: str, pending: _Pending | None) -> None:
        """A message that repeats a header: its action fails, an event is dropped."""
        name = printable(repeated, ECHO_LIMIT)
        if pending is not None:
            log.warning("AMI response to our action repeats the header %s: the action fails", name)
            pending.response = AmiResponse(
                {"Response": "Error", "Message": f"malformed response: repeated header {name}"})
            pending.collecting = False
            pending.done.set()
            return
        event = printable(message.get("Event", "?"), ECHO_LIMIT)
        log.warning("AMI event %s repeats the header %s: ignored as malformed", event, name)

    def _dispatch(self) -> None:
        while True:
            message = self._events.get()
            if message is None:
                return
            try:
                marker = message.get("__recguard__")
                if marker == "connect" and self.on_connect:
                    self.on_connect()
                elif marker == "disconnect" and self.on_disconnect:
                    self.on_disconnect(message.get("reason", ""))
                elif marker is None and self.on_event:
                    self.on_event(message)
            except Exception:
                log.exception("AMI event handler failed on %s", message.get("Event"))

    def _fail_pending(self, reason: str) -> None:
        with self._pending_lock:
            for pending in self._pending.values():
                pending.response = AmiResponse({"Response": "Error", "Message": f"connection lost: {reason}"})
                pending.done.set()

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

