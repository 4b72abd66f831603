"""The real RabbitMQ for integration tests: unique vhosts per test session, deleted at the end.

Reads ``EVB_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``) and
``EVB_RABBIT_MGMT_URL`` (default ``http://guest:guest@127.0.0.1:15672``). When the
server cannot be reached the tests that need it are skipped — or fail when ``CI=true``,
so that a CI run never passes by skipping.

Everything a session creates is named ``evbtest-<hex>…``: vhosts (and with them their
queues, shovels, upstreams and policies) and users (node and link users are named
``<vhost>.…``). :meth:`RabbitSession.cleanup` deletes all of it, also what the code
under test created (e.g. a vhost made by ``provision_site``).

The fixture talks to the management API synchronously (stdlib ``urllib``) so that it
owns no event loop and works under any pytest-asyncio loop scope.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from yarl import URL

from broker.transport.management import ManagementClient

__all__ = ["RabbitSession", "rabbit"]

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_MGMT_URL = "http://guest:guest@127.0.0.1:15672"


class RabbitSession:
    """A test session's corner of the RabbitMQ server."""

    def __init__(self, amqp_url: str, mgmt_url: str) -> None:
        amqp = URL(amqp_url)
        mgmt = URL(mgmt_url)
        self.amqp_host = amqp.host or "127.0.0.1"
        self.amqp_port = amqp.port or 5672
        self.amqp_user = amqp.user or "guest"
        self.amqp_password = amqp.password or "guest"
        self.mgmt_user = mgmt.user or "guest"
        self.mgmt_password = mgmt.password or "guest"
        self.mgmt_url = str(mgmt.with_user(None).with_password(None)).rstrip("/")
        self.prefix = f"evbtest-{secrets.token_hex(4)}"
        self._counter = itertools.count(1)

    # -- the management API, synchronously ------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/api/<path>`` (segments already quoted); return the JSON body or None."""
        request = urllib.request.Request(  # noqa: S310 - a test-configured http(s) URL
            f"{self.mgmt_url}/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "content-type": "application/json",
                "authorization": "Basic "
                + base64.b64encode(f"{self.mgmt_user}:{self.mgmt_password}".encode()).decode(),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method in ("DELETE", "GET"):
                return None
            raise
        return json.loads(text) if text.strip() else None

    def reachable(self) -> str | None:
        """Return why the server cannot be used, or None when it can."""
        try:
            overview = self.api("GET", "overview")
        except (OSError, urllib.error.URLError) as exc:
            return f"RabbitMQ management API at {self.mgmt_url} unreachable: {exc}"
        if not overview:
            return "RabbitMQ management API answered nothing"
        return None

    # -- what tests use -------------------------------------------------------------------

    def new_vhost(self, label: str) -> str:
        """Create a fresh vhost ``<prefix>-<n>-<label>`` with full rights for the test user."""
        vhost = f"{self.prefix}-{next(self._counter)}-{label}"
        self.create_vhost(vhost)
        return vhost

    def vhost_name(self, label: str) -> str:
        """A fresh vhost name in this session, not created (for code that creates it)."""
        return f"{self.prefix}-{next(self._counter)}-{label}"

    def create_vhost(self, vhost: str) -> None:
        """Create ``vhost`` and give the AMQP test user every permission in it."""
        assert vhost.startswith(self.prefix), "test vhosts carry the session prefix"
        v = quote(vhost, safe="")
        self.api("PUT", f"vhosts/{v}", {"description": "evidence-broker test"})
        for user in {self.amqp_user, self.mgmt_user}:
            self.api(
                "PUT",
                f"permissions/{v}/{quote(user, safe='')}",
                {"configure": ".*", "write": ".*", "read": ".*"},
            )

    def amqp_url(
        self,
        vhost: str,
        *,
        user: str | None = None,
        password: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> str:
        """An AMQP URL of ``vhost`` (default: the test user, the real server)."""
        return str(
            URL.build(
                scheme="amqp",
                user=user or self.amqp_user,
                password=password if password is not None else self.amqp_password,
                host=host or self.amqp_host,
                port=port or self.amqp_port,
                path="/" + quote(vhost, safe=""),
                encoded=True,
            )
        )

    def management(self) -> ManagementClient:
        """A (not yet open) management client of this server as the test user."""
        return ManagementClient(self.mgmt_url, self.mgmt_user, self.mgmt_password)

    def queue_messages(self, vhost: str, queue: str) -> int | None:
        """Ready + unacked messages per the management API (its statistics lag seconds)."""
        found = self.api("GET", f"queues/{quote(vhost, safe='')}/{quote(queue, safe='')}")
        return None if found is None else found.get("messages")

    def cleanup(self) -> None:
        """Delete every vhost and user of this session."""
        for vhost in self.api("GET", "vhosts") or []:
            if vhost["name"].startswith(self.prefix):
                self.api("DELETE", f"vhosts/{quote(vhost['name'], safe='')}")
        for user in self.api("GET", "users") or []:
            if user["name"].startswith(self.prefix):
                self.api("DELETE", f"users/{quote(user['name'], safe='')}")


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitSession]:
    """The session's RabbitMQ; skipped when unreachable (failed when ``CI=true``)."""
    session = RabbitSession(
        os.environ.get("EVB_AMQP_URL", DEFAULT_AMQP_URL),
        os.environ.get("EVB_RABBIT_MGMT_URL", DEFAULT_MGMT_URL),
    )
    problem = session.reachable()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    try:
        yield session
    finally:
        session.cleanup()
