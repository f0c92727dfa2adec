"""A real Bluesky PDS for the test suite, on 127.0.0.1 only.

`tests/support/pds/start-pds.js` runs @atproto/dev-env's TestNetworkNoAppView (an in-memory PLC
directory + a PDS on SQLite) with Node.js; `scripts/pds-deps` installs its node modules. There is no
AppView: `app.bsky.*` reads answer 502, so assertions use `com.atproto.repo.getRecord/listRecords`.
Handles on this PDS end in `.test`; no invite code, no e-mail confirmation.

The PDS's data lives in a temporary directory that the launcher deletes when it stops (and `stop()`
too). The child reads a pipe on its stdin and exits when it closes, so even a killed test run leaves
no PDS (and no data) behind. Set GHOSTPOST_PDS_LOG
to a file path to get the PDS's own logs (pino JSON) there.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import requests

PDS_DIR = Path(__file__).resolve().parent / "pds"
LAUNCHER = PDS_DIR / "start-pds.js"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 30.0
INSTALL_HINT = "run scripts/pds-deps (needs Node.js >= 20 and npm; about 2 minutes the first time)"


class PdsNotInstalled(RuntimeError):
    """Node.js or the PDS's node modules are missing."""


class PdsStartError(RuntimeError):
    """The PDS process died or did not report readiness in time."""


class XrpcError(RuntimeError):
    """A non-2xx XRPC answer: HTTP status plus the `error`/`message` of its JSON body."""

    def __init__(self, nsid: str, status: int, body: Any) -> None:
        self.nsid = nsid
        self.status = status
        self.body = body
        self.error = body.get("error") if isinstance(body, dict) else None
        self.message = body.get("message") if isinstance(body, dict) else None
        super().__init__(f"{nsid}: HTTP {status} {self.error}: {self.message or body!r}")


def modules_installed() -> bool:
    return (PDS_DIR / "node_modules" / "@atproto" / "dev-env" / "package.json").is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BlueskyPds:
    """One PLC + PDS pair run by `node start-pds.js`; XRPC helpers for set-up and assertions."""

    def __init__(
        self,
        *,
        ready_timeout: float = READY_TIMEOUT,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.ready_timeout = ready_timeout
        self.log_path = log_path if log_path is not None else os.environ.get("GHOSTPOST_PDS_LOG")
        self.ready_info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []
        self._stdout: collections.deque[str] = collections.deque(maxlen=200)
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._tmp: str | None = None
        self._http: requests.Session | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BlueskyPds:
        if self._proc is not None:
            raise RuntimeError("PDS already started")
        node = shutil.which("node")
        if node is None:
            raise PdsNotInstalled(f"node not found on PATH: {INSTALL_HINT}")
        if not modules_installed():
            raise PdsNotInstalled(
                f"node modules missing in {PDS_DIR / 'node_modules'}: {INSTALL_HINT}"
            )
        last: PdsStartError | None = None
        for _attempt in range(3):  # a port picked here may be taken before node binds it
            try:
                self._start_once(node)
                return self
            except PdsStartError as err:
                last = err
                if "EADDRINUSE" not in str(err):
                    raise
        assert last is not None
        raise last

    def _start_once(self, node: str) -> None:
        self._tmp = tempfile.mkdtemp(prefix="ghostpost-pds-")
        env = dict(os.environ, GP_PDS_DATA_DIR=self._tmp)
        if self.log_path:
            env.update(LOG_ENABLED="true", LOG_DESTINATION=os.fspath(self.log_path))
        pds_port = free_port()
        plc_port = free_port()
        while plc_port == pds_port:
            plc_port = free_port()
        self._ready.clear()
        self.ready_info = {}
        self._stdout.clear()
        self._stderr.clear()
        self._proc = subprocess.Popen(
            [node, str(LAUNCHER), str(pds_port), str(plc_port)],
            cwd=PDS_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            threading.Thread(
                target=_reader,
                args=(self._proc.stdout, self._stdout, self._ready, self.ready_info),
                daemon=True,
            ),
            threading.Thread(
                target=_reader, args=(self._proc.stderr, self._stderr, None, {}), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            code = self._proc.poll()
            if code is not None or time.monotonic() > deadline:
                why = (
                    f"exited with code {code}"
                    if code is not None
                    else f"not ready within {self.ready_timeout:.0f} s"
                )
                self.stop()
                raise PdsStartError(f"Bluesky PDS {why}; its stderr:\n{self.stderr()}")
        self._http = requests.Session()

    def stop(self) -> None:
        """SIGTERM (the launcher closes the network and exits 0), then SIGKILL after a timeout."""
        proc, self._proc = self._proc, None
        if self._http is not None:
            self._http.close()
            self._http = None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for reader in self._readers:
                reader.join(5)
            self._readers = []
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with suppress(OSError):
                        stream.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> BlueskyPds:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """Where to connect: http://127.0.0.1:<port>."""
        return str(self._info("pds"))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def plc_url(self) -> str:
        return str(self._info("plc"))

    @property
    def public_url(self) -> str:
        """The PDS's own idea of its URL (issuer, DID documents): http://localhost:<port>."""
        return str(self._info("pds_public_url"))

    def stderr(self) -> str:
        return "".join(self._stderr)

    def stdout(self) -> str:
        return "".join(self._stdout)

    def _info(self, key: str) -> Any:
        if not self.ready_info:
            raise RuntimeError("PDS not started")
        return self.ready_info[key]

    # -- raw XRPC -------------------------------------------------------------------------------

    def xrpc_url(self, nsid: str) -> str:
        return f"{self.url}/xrpc/{nsid}"

    def _session(self) -> requests.Session:
        if self._http is None:
            raise RuntimeError("PDS not started")
        return self._http

    def xrpc_get(
        self, nsid: str, params: dict[str, Any] | None = None, *, token: str | None = None
    ) -> requests.Response:
        return self._session().get(
            self.xrpc_url(nsid), params=params, headers=_auth(token), timeout=HTTP_TIMEOUT
        )

    def xrpc_post(
        self, nsid: str, body: dict[str, Any] | None = None, *, token: str | None = None
    ) -> requests.Response:
        return self._session().post(
            self.xrpc_url(nsid), json=body or {}, headers=_auth(token), timeout=HTTP_TIMEOUT
        )

    def call(
        self,
        nsid: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        method: str = "POST",
    ) -> dict[str, Any]:
        """An XRPC call whose answer must be 2xx; returns its JSON body, raises XrpcError."""
        if method == "GET":
            response = self.xrpc_get(nsid, params, token=token)
        else:
            response = self.xrpc_post(nsid, body, token=token)
        return _json_or_raise(nsid, response)

    # -- set-up and assertion helpers -------------------------------------------------------

    def create_account(self, handle: str, password: str, email: str) -> dict[str, str]:
        """com.atproto.server.createAccount; the handle must end in `.test`."""
        data = self.call(
            "com.atproto.server.createAccount",
            {"handle": handle, "password": password, "email": email},
        )
        return {
            "did": data["did"],
            "handle": data["handle"],
            "accessJwt": data["accessJwt"],
            "refreshJwt": data["refreshJwt"],
        }

    def create_session(self, identifier: str, password: str) -> dict[str, Any]:
        """com.atproto.server.createSession (account password or app password)."""
        return self.call(
            "com.atproto.server.createSession", {"identifier": identifier, "password": password}
        )

    def create_app_password(self, access_jwt: str, name: str) -> str:
        """com.atproto.server.createAppPassword; returns the `xxxx-xxxx-xxxx-xxxx` password."""
        data = self.call("com.atproto.server.createAppPassword", {"name": name}, token=access_jwt)
        return str(data["password"])

    def get_record(self, did: str, collection: str, rkey: str) -> dict[str, Any] | None:
        """{uri, cid, value} of one record, or None when the PDS answers RecordNotFound."""
        nsid = "com.atproto.repo.getRecord"
        response = self.xrpc_get(nsid, {"repo": did, "collection": collection, "rkey": rkey})
        if response.status_code == 400 and _error_of(response) == "RecordNotFound":
            return None
        return _json_or_raise(nsid, response)

    def list_records(self, did: str, collection: str) -> list[dict[str, Any]]:
        """Every record ({uri, cid, value}) of a collection, newest first, following cursors."""
        records: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"repo": did, "collection": collection, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            data = self.call("com.atproto.repo.listRecords", params=params, method="GET")
            page = data.get("records", [])
            records.extend(page)
            cursor = data.get("cursor")
            if not cursor or not page:
                return records


def _reader(
    stream: IO[bytes],
    sink: collections.deque[str],
    ready: threading.Event | None,
    info: dict[str, Any],
) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        sink.append(line)
        if ready is not None and not ready.is_set() and line.startswith('{"ready_ms"'):
            try:
                info.update(json.loads(line))
            except ValueError:
                continue
            ready.set()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _error_of(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def _json_or_raise(nsid: str, response: requests.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if not 200 <= response.status_code < 300 or not isinstance(body, dict):
        raise XrpcError(nsid, response.status_code, body)
    return body


@contextmanager
def running_bluesky_pds(**kwargs: Any) -> Iterator[BlueskyPds]:
    """A started BlueskyPds, stopped (and its data removed) on exit."""
    pds = BlueskyPds(**kwargs)
    pds.start()
    try:
        yield pds
    finally:
        pds.stop()
