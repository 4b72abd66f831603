"""A small client of the RabbitMQ management HTTP API.

This module owns the HTTP side of a site: vhosts, users and permissions, queues and
bindings declared without an AMQP connection, dynamic shovel parameters and their
status, federation upstreams and policies — what :mod:`broker.transport.links` needs
to provision sites and links. Only the endpoints it uses are wrapped; each returns
plain data (``dict`` / ``list`` as the API gives it) or ``None`` for "not there".

Errors are translated here, never leaked as ``aiohttp`` exceptions:

* unreachable, timeout, 5xx                    -> :class:`TransportBroken`
* 401 / 403 (credentials, not an administrator) -> :class:`ConfigError`
* 400 and other 4xx (a rejected definition)     -> :class:`ConfigError` with the
  broker's reason, passwords in any URI masked (RabbitMQ quotes shovel URIs back).

Passwords are sent, never logged or put in an error; request logs carry method, path
(vhost and names only) and status.
"""

from __future__ import annotations

import base64
import html
import json
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from yarl import URL

from broker.errors import ConfigError, TransportBroken
from broker.transport.connection import redact_uri
from broker.transport.topology import Permissions

__all__ = ["DEFAULT_MANAGEMENT_URL", "ManagementClient"]

_log = structlog.get_logger(__name__)

#: The management API of a local RabbitMQ (``EVB_RABBIT_MGMT_URL``).
DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"

_HTTP_UNAUTHORIZED = 401
_HTTP_FORBIDDEN = 403
_HTTP_NOT_FOUND = 404
_HTTP_SERVER_ERROR = 500


#: What a request answered with 404 returns when the caller said ``missing_ok``.
_MISSING: Any = object()


def _segment(value: str) -> str:
    # Every path segment is a name (vhosts may contain "/"): encode all of it.
    return quote(value, safe="")


class ManagementClient:
    """An async client of ``/api`` on one RabbitMQ server (an async context manager).

    Args:
        url: base URL, e.g. ``http://127.0.0.1:15672`` (credentials in the URL are used
            when ``user`` is not given).
        user: management user (needs the ``administrator`` tag for users, vhosts
            and shovels).
        password: its password.
        ssl_context: TLS context for an ``https://`` URL (default: system CAs).
        timeout: seconds per request.
    """

    def __init__(
        self,
        url: str = DEFAULT_MANAGEMENT_URL,
        user: str | None = None,
        password: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 15.0,
    ) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"the management URL must be http(s)://host:port, not {url!r}")
        self._user = user if user is not None else (parsed.user or "guest")
        self._password = password if password is not None else (parsed.password or "guest")
        self._base = str(parsed.with_user(None).with_password(None)).rstrip("/")
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The base URL, without credentials."""
        return self._base

    @property
    def user(self) -> str:
        """The management user."""
        return self._user

    async def __aenter__(self) -> ManagementClient:
        if ":" in self._user:
            raise ConfigError("a management user name cannot contain ':' (HTTP basic auth)")
        # The header is built here: aiohttp.BasicAuth is deprecated in newer releases,
        # and its replacement does not exist in older ones.
        token = base64.b64encode(f"{self._user}:{self._password}".encode()).decode("ascii")
        self._session = aiohttp.ClientSession(
            headers={"authorization": f"Basic {token}"}, timeout=self._timeout
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # -- the transport of every call ------------------------------------------------------

    async def _request(
        self,
        method: str,
        *segments: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """Send one request; return the decoded JSON body (``None`` if empty or missing)."""
        if self._session is None:
            raise ConfigError("the management client is not open (use `async with`)")
        path = "/api/" + "/".join(_segment(s) for s in segments)
        url = URL(self._base + path, encoded=True)
        if query:
            url = url.update_query(query)
        what = f"{method} {path}"
        try:
            async with self._session.request(
                method,
                url,
                data=None if body is None else json.dumps(body),
                headers={"content-type": "application/json"},
                ssl=self._ssl if self._ssl is not None else True,
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportBroken(
                f"management API at {self._base} unreachable ({what}): {type(exc).__name__}"
            ) from exc
        _log.debug("rabbit_mgmt_request", method=method, path=path, status=status)
        if status == _HTTP_NOT_FOUND and missing_ok:
            return _MISSING
        if status < 300:
            return json.loads(text) if text.strip() else None
        reason = _reason(text)
        if status in (_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN):
            raise ConfigError(
                f"management API refused user {self._user!r} ({what}: {status}); "
                "check the credentials and the administrator tag"
            )
        if status >= _HTTP_SERVER_ERROR:
            raise TransportBroken(f"management API failed ({what}: {status}): {reason}")
        raise ConfigError(f"management API rejected {what} ({status}): {reason}")

    # -- server ---------------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        """``GET /api/overview``: versions, node, listeners."""
        result: dict[str, Any] = await self._request("GET", "overview")
        return result

    # -- vhosts, users, permissions -------------------------------------------------------

    async def vhosts(self) -> list[str]:
        """The names of all vhosts."""
        return [v["name"] for v in await self._request("GET", "vhosts")]

    async def put_vhost(self, vhost: str, *, description: str = "") -> None:
        """Create a vhost (idempotent)."""
        await self._request("PUT", "vhosts", vhost, body={"description": description})

    async def delete_vhost(self, vhost: str) -> bool:
        """Delete a vhost and everything in it; ``False`` if there was none."""
        return await self._delete("vhosts", vhost)

    async def users(self) -> list[str]:
        """The names of all users."""
        return [u["name"] for u in await self._request("GET", "users")]

    async def put_user(self, user: str, password: str, *, tags: str = "") -> None:
        """Create a user or reset its password and tags."""
        await self._request("PUT", "users", user, body={"password": password, "tags": tags})

    async def delete_user(self, user: str) -> bool:
        """Delete a user; ``False`` if there was none."""
        return await self._delete("users", user)

    async def set_permissions(self, vhost: str, user: str, permissions: Permissions) -> None:
        """Set a user's permissions in a vhost (replaces what was there)."""
        body = {
            "configure": permissions.configure,
            "write": permissions.write,
            "read": permissions.read,
        }
        await self._request("PUT", "permissions", vhost, user, body=body)

    async def permissions(self, vhost: str, user: str) -> Permissions | None:
        """A user's permissions in a vhost, ``None`` if it has none."""
        found = await self._request("GET", "permissions", vhost, user, missing_ok=True)
        if found is _MISSING:
            return None
        return Permissions(found["configure"], found["write"], found["read"])

    # -- queues, exchanges, bindings ------------------------------------------------------

    async def queue(self, vhost: str, name: str) -> dict[str, Any] | None:
        """A queue's details (``messages``, ``consumers``, ``arguments`` …) or ``None``."""
        found = await self._request("GET", "queues", vhost, name, missing_ok=True)
        return None if found is _MISSING else dict(found)

    async def put_queue(self, vhost: str, name: str, arguments: Mapping[str, Any]) -> None:
        """Declare a durable queue (idempotent; other arguments are refused: ``E_CONFIG``)."""
        body = {"durable": True, "auto_delete": False, "arguments": dict(arguments)}
        await self._request("PUT", "queues", vhost, name, body=body)

    async def delete_queue(self, vhost: str, name: str, *, if_empty: bool = False) -> bool:
        """Delete a queue; ``False`` if there was none.

        Raises:
            ConfigError: ``if_empty`` and the queue holds messages.
        """
        query = {"if-empty": "true"} if if_empty else None
        return await self._delete("queues", vhost, name, query=query)

    async def exchange(self, vhost: str, name: str) -> dict[str, Any] | None:
        """An exchange's details or ``None``."""
        found = await self._request("GET", "exchanges", vhost, name, missing_ok=True)
        return None if found is _MISSING else dict(found)

    async def queue_bindings(self, vhost: str, exchange: str, queue: str) -> list[dict[str, Any]]:
        """The bindings from ``exchange`` to ``queue``."""
        found = await self._request("GET", "bindings", vhost, "e", exchange, "q", queue)
        return list(found or [])

    async def bind_queue(self, vhost: str, exchange: str, queue: str, routing_key: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key`` (idempotent)."""
        await self._request(
            "POST",
            "bindings",
            vhost,
            "e",
            exchange,
            "q",
            queue,
            body={"routing_key": routing_key, "arguments": {}},
        )

    async def unbind_queue(
        self, vhost: str, exchange: str, queue: str, properties_key: str
    ) -> bool:
        """Remove one binding (``properties_key`` from :meth:`queue_bindings`)."""
        return await self._delete("bindings", vhost, "e", exchange, "q", queue, properties_key)

    # -- runtime parameters: shovels and federation upstreams -----------------------------

    async def parameters(self, component: str) -> list[dict[str, Any]]:
        """Every runtime parameter of a component (``shovel``, ``federation-upstream``)."""
        found = await self._request("GET", "parameters", component, missing_ok=True)
        # 404: the plugin that owns the component is not enabled, so there are none.
        return [] if found is _MISSING else list(found or [])

    async def put_parameter(
        self, component: str, vhost: str, name: str, value: Mapping[str, Any]
    ) -> None:
        """Create or replace a runtime parameter (a dynamic shovel, an upstream …)."""
        body = {"component": component, "vhost": vhost, "name": name, "value": dict(value)}
        await self._request("PUT", "parameters", component, vhost, name, body=body)

    async def delete_parameter(self, component: str, vhost: str, name: str) -> bool:
        """Delete a runtime parameter; ``False`` if there was none."""
        return await self._delete("parameters", component, vhost, name)

    async def shovels(self) -> list[dict[str, Any]]:
        """``GET /api/shovels``: the status of every running shovel (``state`` …)."""
        found = await self._request("GET", "shovels", missing_ok=True)
        return [] if found is _MISSING else list(found or [])

    async def federation_links(self) -> list[dict[str, Any]] | None:
        """The status of federation links, ``None`` without the federation management plugin."""
        found = await self._request("GET", "federation-links", missing_ok=True)
        return None if found is _MISSING else list(found or [])

    # -- policies -------------------------------------------------------------------------

    async def policies(self, vhost: str) -> list[dict[str, Any]]:
        """The policies of a vhost."""
        return list(await self._request("GET", "policies", vhost) or [])

    async def put_policy(
        self,
        vhost: str,
        name: str,
        *,
        pattern: str,
        definition: Mapping[str, Any],
        apply_to: str = "exchanges",
        priority: int = 0,
    ) -> None:
        """Create or replace a policy."""
        body = {
            "pattern": pattern,
            "definition": dict(definition),
            "apply-to": apply_to,
            "priority": priority,
        }
        await self._request("PUT", "policies", vhost, name, body=body)

    async def delete_policy(self, vhost: str, name: str) -> bool:
        """Delete a policy; ``False`` if there was none."""
        return await self._delete("policies", vhost, name)

    async def _delete(self, *segments: str, query: Mapping[str, str] | None = None) -> bool:
        result = await self._request("DELETE", *segments, query=query, missing_ok=True)
        return result is not _MISSING


def _reason(text: str) -> str:
    """The broker's reason of an error response, passwords masked, one line."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = str(data.get("reason") or data.get("error") or text)
    # RabbitMQ HTML-escapes Erlang terms in reasons (&lt;&lt;"on-confirm"&gt;&gt;).
    return " ".join(redact_uri(html.unescape(text)).split())[:500]
