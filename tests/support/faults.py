"""Fault-injecting platform adapters for crash tests (loaded by a worker process via settings).

They wrap the real local publisher and kill the process with os._exit, which, like kill -9,
runs no cleanup: no exception handler, no rollback, no `finally`.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ghostpost.adapters.base import Publisher, Receipt
from ghostpost.adapters.local import LocalPublisher
from ghostpost.bootstrap import Container
from ghostpost.domain.model import Account
from ghostpost.domain.post_options import PLAIN, PostOptions

CRASH_EXIT_CODE = 137


class CrashingPublisher:
    """Dies on the Nth publish, either before sending or after the platform accepted."""

    def __init__(self, container: Container, *, after_accept: bool) -> None:
        # GP_TEST_CRASH_INNER names the real adapter to wrap (module:factory); default `local`.
        inner = os.environ.get("GP_TEST_CRASH_INNER")
        if inner:
            module, _, factory = inner.partition(":")
            self._inner: Publisher = getattr(importlib.import_module(module), factory)(container)
        else:
            self._inner = LocalPublisher(container.local_store, container.settings.public_url)
        self.platform = self._inner.platform
        self._crash_on = int(os.environ.get("GP_TEST_CRASH_ON", "1"))
        self._after_accept = after_accept
        self._calls = 0

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        **sent: Any,
    ) -> Receipt:
        self._calls += 1
        crash = self._calls == self._crash_on
        if crash and not self._after_accept:
            os._exit(CRASH_EXIT_CODE)
        receipt = self._inner.publish(
            account, text, idempotency_key=idempotency_key, options=options, **sent
        )
        if crash:
            os._exit(CRASH_EXIT_CODE)
        return receipt

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        return self._inner.lookup(account, idempotency_key=idempotency_key)


def crash_after_accept(container: Container) -> CrashingPublisher:
    return CrashingPublisher(container, after_accept=True)


def crash_before_send(container: Container) -> CrashingPublisher:
    return CrashingPublisher(container, after_accept=False)


def mastodon_dying_after_upload(container: Container) -> Publisher:
    """The real Mastodon adapter, dying (os._exit) right after it uploaded a post's images and
    before it creates the status: the crash the media reconciliation must survive."""
    from ghostpost.adapters import mastodon

    publisher = mastodon.from_container(container)
    publisher.after_media_upload = lambda: os._exit(CRASH_EXIT_CODE)
    return publisher
