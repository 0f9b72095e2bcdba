"""A small ARI client: REST over requests, events over websocket-client.

We write our own because ari-py (``ari`` on PyPI) is Python-2-only,
unmaintained, and never reconnected; this one keeps to the same stack
(requests for REST, a websocket for events) and adds what a daemon needs:
reconnection with backoff for ever, a callback on every (re)connect so the
caller can re-apply its event filter and subscriptions, and one clear error
type for every failed request. It knows nothing of recording law.
"""

from __future__ import annotations

import json
import logging
import time
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import websocket

from ._reconnect import Reconnecting

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]


class AriError(Exception):
    """A REST request failed: transport error or an HTTP status of 400 or more."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"ARI {method} {path}: {where}: {detail}")


class AriClient:
    """ARI REST calls for one application on one Asterisk."""

    def __init__(self, base_url: str, user: str, password: str, app: str, timeout: float = 5.0,
                 connections: int = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.password = password
        self.app = app
        self.timeout = timeout
        self._session = requests.Session()
        self._session.auth = (user, password)
        # One kept-alive connection per thread that may ask at once (the guard's
        # lanes, workers and reconcile), so none is opened and thrown away per request.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # -- generic -------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        url = f"{self.base_url}{path}"
        try:
            reply = self._session.request(
                method, url, params=params, json=body, timeout=timeout or self.timeout
            )
        except requests.RequestException as exc:
            raise AriError(method, path, None, str(exc)) from exc
        if reply.status_code >= 400:
            try:
                detail = reply.json().get("message", reply.text)
            except ValueError:
                detail = reply.text.strip() or reply.reason
            raise AriError(method, path, reply.status_code, detail)
        if not reply.content:
            return None
        try:
            return reply.json()
        except ValueError:
            return reply.text

    # -- the calls recguard and its tests use --------------------------------

    def asterisk_info(self) -> dict[str, Any]:
        return self.request("GET", "/asterisk/info")

    def channels(self) -> list[dict[str, Any]]:
        return self.request("GET", "/channels")

    def channel(self, channel_id: str) -> dict[str, Any]:
        return self.request("GET", f"/channels/{quote(channel_id, safe='')}")

    def get_variable(self, channel_id: str, name: str) -> str | None:
        try:
            reply = self.request(
                "GET", f"/channels/{quote(channel_id, safe='')}/variable", params={"variable": name}
            )
        except AriError as exc:
            if exc.status == 404:
                return None
            raise
        return reply.get("value") if isinstance(reply, dict) else None

    def continue_in_dialplan(self, channel_id: str) -> None:
        self.request("POST", f"/channels/{quote(channel_id, safe='')}/continue")

    def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.request("DELETE", f"/channels/{quote(channel_id, safe='')}", params={"reason": reason})

    def send_dtmf(self, channel_id: str, digits: str, duration_ms: int = 120, between_ms: int = 120) -> None:
        self.request(
            "POST",
            f"/channels/{quote(channel_id, safe='')}/dtmf",
            params={"dtmf": digits, "duration": duration_ms, "between": between_ms},
        )

    def originate(
        self,
        endpoint: str,
        app: str,
        app_args: str = "",
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
        timeout_s: int = 30,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"endpoint": endpoint, "app": app, "timeout": timeout_s}
        if app_args:
            params["appArgs"] = app_args
        if caller_id is not None:
            params["callerId"] = caller_id
        if channel_id:
            params["channelId"] = channel_id
        body = {"variables": dict(variables)} if variables else None
        return self.request("POST", "/channels", params=params, body=body)

    def app_registered(self, name: str | None = None) -> bool:
        """Whether a Stasis app (this client's by default) is registered, i.e. has its websocket open."""
        wanted = name or self.app
        try:
            apps = self.request("GET", "/applications")
        except AriError:
            return False
        return any(isinstance(a, dict) and a.get("name") == wanted for a in apps or [])

    def subscribe(self, event_source: str) -> None:
        """Keep receiving a channel's (or bridge's) events, also outside Stasis."""
        self.request(
            "POST", f"/applications/{quote(self.app, safe='')}/subscription", params={"eventSource": event_source}
        )

    def unsubscribe(self, event_source: str) -> None:
        self.request(
            "DELETE", f"/applications/{quote(self.app, safe='')}/subscription", params={"eventSource": event_source}
        )

    def set_event_filter(self, allowed: Iterable[str]) -> None:
        """Only these event types reach the app (must be re-applied after every reconnect)."""
        body = {"allowed": [{"type": kind} for kind in allowed]}
        self.request("PUT", f"/applications/{quote(self.app, safe='')}/eventFilter", body=body)

    def events_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = f"app={quote(self.app, safe='')}&subscribeAll=false"
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/events", query, ""))

    def auth_header(self) -> str:
        token = b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Authorization: Basic {token}"


class EventStream(Reconnecting):
    """The app's event websocket, kept open for ever with backoff.

    Events are handed to ``on_event`` in the order Asterisk sent them, on the
    stream's own thread. ``on_connect`` runs after each (re)connect, before
    any event of that connection is handled; ``on_disconnect`` after each loss.
    Registering the app is what makes ``Stasis(app)`` succeed, so while this
    stream is down, calls pass the gate unrecorded (fail closed).
    """

    def __init__(
        self,
        client: AriClient,
        on_event: EventHandler,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[str], None] | None = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        super().__init__(on_connect, on_disconnect, backoff_initial, backoff_max)
        self.client = client
        self.on_event = on_event
        self._ws: websocket.WebSocket | None = None

    def _workers(self) -> list[tuple[str, Callable[[], None]]]:
        return [(f"ari-events-{self.client.app}", self._run)]

    def _interrupt(self) -> None:
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # closing a broken socket may raise anything
                pass

    def _connect(self) -> None:
        self._ws = websocket.create_connection(
            self.client.events_url(), header=[self.client.auth_header()], timeout=10
        )

    def _connect_failed(self, exc: Exception) -> None:
        # Refused, timed out, HTTP 401, DNS...: all are retried alike.
        log.debug("ARI websocket connect failed: %s", exc)

    def _serve_connection(self) -> str:
        ws = self._ws
        assert ws is not None, "served before connecting"
        reason = "closed"
        try:
            ws.settimeout(None)
            self.connected.set()
            if self.on_connect:
                self.on_connect()
            reason = self._read_loop(ws)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.connected.clear()
            try:
                ws.close()
            except Exception:
                pass
            self._ws = None
        return reason

    def _disconnected(self, reason: str) -> None:
        if self.on_disconnect:
            try:
                self.on_disconnect(reason)
            except Exception:  # the stream must reconnect whatever the callback does
                log.exception("ARI disconnect handler failed")

    def _read_loop(self, ws: websocket.WebSocket) -> str:
        while not self._stop.is_set():
            try:
                message = ws.recv()
            except websocket.WebSocketConnectionClosedException:
                return "connection closed by Asterisk"
            except OSError as exc:
                return f"socket error: {exc}"
            if not message:
                return "connection closed by Asterisk"
            try:
                event = json.loads(message)
            except ValueError:
                log.warning("ARI sent a message that is not JSON; ignored")
                continue
            if not isinstance(event, dict) or "type" not in event:
                log.warning("ARI sent an event without a type; ignored")
                continue
            try:
                self.on_event(event)
            except Exception:
                # One bad event must not take the stream down.
                log.exception("handler failed on ARI event %s", event.get("type"))
        return "stopped"


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
