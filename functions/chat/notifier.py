"""The API Gateway management API adapter: post frames to connections, one or many at a time.

Fan-out is best effort per recipient: a 410 marks the connection gone (the caller prunes it), a 429
or 5xx is retried with jittered exponential backoff, and one failure never stops delivery to the
others. Every post is bounded in time, so a hung endpoint cannot hold a Lambda past API Gateway's
29-second integration timeout.

Why not boto3's ``post_to_connection``: its request pipeline costs about 1 ms of CPU per call, so a
fan-out tops out near 900 posts/s whatever the thread count. Signing with botocore's own SigV4Auth
and posting with urllib3 (both in the Lambda runtime) does the same HTTP call at a fraction of that.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import botocore.session
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from chat.observability import logger

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class Delivery(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


@dataclass
class FanoutReport:
    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, connection_id: str, outcome: Delivery) -> None:
        if outcome is Delivery.DELIVERED:
            self.delivered += 1
        elif outcome is Delivery.GONE:
            self.gone.append(connection_id)
        else:
            self.failed.append(connection_id)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 1.0
    connect_timeout: float = 2.0
    read_timeout: float = 3.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff: spreads retries of many posts over time."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def management_endpoint(*, api_id: str, region: str, stage: str) -> str:
    """The management API of a WebSocket API. Built from the API id, not the event's domain name:
    behind a custom domain the domain name does not serve @connections."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


class Notifier:
    def __init__(self, endpoint: str, *, workers: int, region: str, retry: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.workers = workers
        self.region = region
        self.retry = retry or RetryPolicy()
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=workers,  # one pooled socket per worker thread: no thread waits for a socket
            retries=False,
            timeout=urllib3.Timeout(connect=self.retry.connect_timeout, read=self.retry.read_timeout),
        )
        self._credentials_lock = threading.Lock()
        self._session = botocore.session.get_session()

    def send(self, connection_id: str, frame: str) -> Delivery:
        """Post one frame, retrying throttling and server errors; never raises."""
        return self._send(connection_id, frame.encode(), self._credentials())

    def send_many(self, connection_ids: Iterable[str], frame: str) -> FanoutReport:
        """Post the same frame to many connections concurrently, on at most ``workers`` threads."""
        report = FanoutReport()
        ids = list(connection_ids)
        data, credentials = frame.encode(), self._credentials()
        if len(ids) <= 1:
            for connection_id in ids:
                report.add(connection_id, self._send(connection_id, data, credentials))
            return report
        with ThreadPoolExecutor(max_workers=min(self.workers, len(ids))) as pool:
            outcomes = pool.map(lambda cid: self._send(cid, data, credentials), ids)
            for connection_id, outcome in zip(ids, outcomes, strict=True):
                report.add(connection_id, outcome)
        return report

    def _credentials(self) -> ReadOnlyCredentials:
        with self._credentials_lock:
            credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign management API calls with")
        return credentials.get_frozen_credentials()

    def _send(self, connection_id: str, data: bytes, credentials: ReadOnlyCredentials) -> Delivery:
        url = f"{self.endpoint}/@connections/{quote(connection_id, safe='')}"
        for attempt in range(self.retry.attempts):
            status = self._post(url, data, credentials)
            if status < 300:
                return Delivery.DELIVERED
            if status == 410:
                return Delivery.GONE
            if status not in RETRYABLE_STATUSES:
                break
            time.sleep(self.retry.delay(attempt))
        logger.warning("post failed", connection_id=connection_id, status=status)
        return Delivery.FAILED

    def _post(self, url: str, data: bytes, credentials: ReadOnlyCredentials) -> int:
        """One signed POST; a network failure counts as a 503 (worth retrying)."""
        request = AWSRequest(method="POST", url=url, data=data, headers={"Host": urlsplit(url).netloc})
        SigV4Auth(credentials, "execute-api", self.region).add_auth(request)
        try:
            response = self._http.request("POST", url, body=data, headers=dict(request.headers.items()))
        except urllib3.exceptions.HTTPError as exc:
            logger.debug("post attempt failed", error=str(exc))
            return 503
        return int(response.status)
