"""The whole local stack: the WebSocket gateway and the management API in one asyncio loop, the
handlers in a child process (``handler_process.py``), moto in another (``moto_process.py``).

``LocalStack(options).run()`` serves until cancelled (Ctrl-C in ``__main__``); ``start()`` and
``stop()`` are the two halves, for running it on a thread of one's own (``testing.py``).
Stopping closes every socket with 1001 and waits for each ``$disconnect`` before moto stops.

The handlers read their settings from the process environment, once, and cache their clients,
as a warm Lambda does: so one process runs one local stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from chat import config

from infra import constants, sizing
from local_stack import REPO_ROOT, aws, breaks, events, ids
from local_stack.cognito_proxy import CognitoProxy
from local_stack.console import Console
from local_stack.gateway import Limits, WebSocketGateway
from local_stack.inspector import PREFIX as INSPECTOR_PREFIX
from local_stack.inspector import Inspector
from local_stack.lambdas import (
    Function,
    LambdaRuntime,
)
from local_stack.management import Faults, ManagementApi
from local_stack.moto_process import MotoProcess
from local_stack.queues import EventSourceMapping
from local_stack.reload import CodeWatcher
from local_stack.site import StaticSite

HOST = "127.0.0.1"
MANAGEMENT_BACKLOG = 2048
WEB_ROOT = REPO_ROOT / "clients" / "web"
FUNCTIONS_ROOT = REPO_ROOT / constants.FUNCTIONS_DIR
COGNITO_PATH = "/cognito"
EVENTS_PATH = "/_local/events"
# Variables of the developer's shell that would mix a real identity with the dummy keys.
SHELL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


@dataclass
class StackOptions:
    """Everything ``python -m local_stack`` takes as flags."""

    port: int = 8080
    # None: the port after ``port`` (or a free one when ``port`` is 0).
    management_port: int | None = None
    idle_timeout_s: float = Limits.idle_timeout_s
    max_lifetime_s: float = Limits.max_lifetime_s
    management_latency_s: float = 0.0
    management_throttle_rate: float = 0.0
    log_level: str = "WARNING"
    record_events: bool = False
    # Deliberate faults, by name (``breaks.BREAKS``), to show that a checker notices them.
    breaks: tuple[str, ...] = ()
    web_root: Path = WEB_ROOT
    # The Lambda asset's root the handlers are imported from, and whether edits there reload them.
    functions_dir: Path = FUNCTIONS_ROOT
    reload: bool = True
    quiet: bool = False
    # Where DynamoDB and Cognito persist across restarts (None: in memory only, gone at stop).
    data_dir: Path | None = None
    # Start empty: whatever ``data_dir`` holds is deleted first.
    fresh: bool = False
    presence_grace_s: int = config.DEFAULT_PRESENCE_GRACE_SECONDS


@dataclass(frozen=True)
class Urls:
    web: str
    websocket: str
    config: str
    management: str
    cognito: str


class LocalStack:
    def __init__(self, options: StackOptions | None = None, console: Console | None = None) -> None:
        self.options = options or StackOptions()
        self.console = console or Console(enabled=not self.options.quiet)
        self.api = events.Api(
            api_id=ids.api_id(),
            stage=constants.LOCAL_STAGE_NAME,
            region=aws.REGION,
            account_id=aws.ACCOUNT_ID,
        )
        self.event_log = events.EventLog(keep_events=self.options.record_events)
        self.urls: Urls | None = None
        self.resources: aws.Resources | None = None
        self._moto: MotoProcess | None = None
        self._runtime: LambdaRuntime | None = None
        self._gateway: WebSocketGateway | None = None
        self._management: ManagementApi | None = None
        self._runner: web.AppRunner | None = None
        self._site: StaticSite | None = None
        self._watcher: CodeWatcher | None = None
        self._presence_checks: EventSourceMapping | None = None

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def start(self) -> Urls:
        self._moto = await asyncio.to_thread(
            MotoProcess, HOST, data_dir=self.options.data_dir, fresh=self.options.fresh
        )
        self.resources = await asyncio.to_thread(self._open_resources, self._moto.url)
        self._runtime = LambdaRuntime(
            region=aws.REGION,
            account_id=aws.ACCOUNT_ID,
            stack_name=constants.STACK_NAME,
            code_root=self.options.functions_dir,
            handler_process=True,
        )
        self._gateway = self._build_gateway()
        self._management = ManagementApi(
            self._gateway,
            Faults(
                self.options.management_latency_s,
                self.options.management_throttle_rate,
                drop=breaks.dropper(self.options.breaks, self._gateway),
            ),
        )
        management_port = await self._serve_http_api()
        self._mount_inspector()
        management_url = f"http://{HOST}:{management_port}/{self.api.stage}"
        # Before the first handler import: modules may read their settings when imported.
        self._apply_environment(management_url)
        self._preload()
        if self.options.reload:
            self._watcher = CodeWatcher(self.options.functions_dir, self._runtime, self.console)
            self._watcher.start()
        self._start_presence_checks()
        port = await self._gateway.start(HOST, self.options.port)
        self.urls = Urls(
            web=f"http://{HOST}:{port}/",
            websocket=f"ws://{HOST}:{port}/{self.api.stage}",
            config=f"http://{HOST}:{port}/config.json",
            management=management_url,
            cognito=f"http://{HOST}:{management_port}{COGNITO_PATH}",
        )
        self._print_urls()
        # What start-up made (modules, botocore's models, the handlers' code) lives as long as the
        # stack: out of the collector's generations, full collections no longer walk it all.
        gc.freeze()
        return self.urls

    async def stop(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
        if self._gateway is not None:
            await self._gateway.stop()
        if self._presence_checks is not None:
            await self._presence_checks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._runtime is not None:
            self._runtime.close()
        if self._moto is not None:
            await asyncio.to_thread(self._moto.stop)
            self._moto = None

    def config(self) -> dict[str, str]:
        """``/config.json``: what a client needs to sign in and connect (docs/protocol.md)."""
        assert self.urls is not None and self.resources is not None
        return {
            "websocketUrl": self.urls.websocket,
            "region": aws.REGION,
            "userPoolId": self.resources.user_pool_id,
            "userPoolClientId": self.resources.user_pool_client_id,
            "cognitoEndpoint": self.urls.cognito,
        }

    def describe_resources(self) -> dict[str, Any]:
        """Where moto serves and what was created in it (for tests that look inside)."""
        assert self.resources is not None
        return {
            "awsEndpoint": self.resources.endpoint,
            "tableNames": self.resources.table_names,
            "motoPid": self._moto.pid if self._moto is not None else None,
            "handlerPid": self._runtime.handler_pid if self._runtime is not None else None,
        }

    @property
    def gateway(self) -> WebSocketGateway:
        assert self._gateway is not None, "start() first"
        return self._gateway

    @property
    def management(self) -> ManagementApi:
        assert self._management is not None, "start() first"
        return self._management

    # -- the pieces

    def _open_resources(self, moto_endpoint: str) -> aws.Resources:
        """The tables and user pool: those of the data directory, or new ones."""
        restored = self._moto is not None and self._moto.started.restored
        found = aws.find_resources(moto_endpoint) if restored else None
        if found is None:
            return aws.create_resources(moto_endpoint, name_suffix=self.api.api_id)
        # The same API id as before, so ARNs and names in events stay those of the first run.
        self.api = dataclasses.replace(self.api, api_id=aws.name_suffix(found))
        gone = aws.forget_connections(found)
        self.console.note(
            f"state restored from {self.options.data_dir} ({gone} records of old connections removed)"
        )
        return found

    def _functions(self) -> dict[str, Function]:
        assert self._runtime is not None
        return {
            route.key: self._runtime.function(
                route.function_id,
                route.handler,
                memory_mb=sizing.route_memory_mb(route.function_id),
            )
            for route in constants.ROUTES
        }

    def _presence_check_function(self) -> Function:
        assert self._runtime is not None
        return self._runtime.function(
            "PresenceCheck", constants.PRESENCE_CHECK_HANDLER, timeout_s=sizing.PRESENCE_CHECK_TIMEOUT_S
        )

    def _start_presence_checks(self) -> None:
        """The presence grace's delayed checks: the queue's trigger, polling moto's SQS."""
        assert self._runtime is not None and self.resources is not None
        self._presence_checks = EventSourceMapping(
            sqs=aws.client("sqs", self.resources.endpoint),
            queues=self.resources.presence_queues,
            runtime=self._runtime,
            function=self._presence_check_function(),
            region=aws.REGION,
        )
        self._presence_checks.start()

    def _build_gateway(self) -> WebSocketGateway:
        assert self._runtime is not None
        self._site = StaticSite(self.options.web_root, self.config)
        return WebSocketGateway(
            api=self.api,
            runtime=self._runtime,
            routes=self._functions(),
            authorizer=self._runtime.function(
                "Authorizer", constants.AUTHORIZER_HANDLER, timeout_s=sizing.AUTHORIZER_TIMEOUT_S
            ),
            site=self._site,
            console=self.console,
            limits=Limits(
                idle_timeout_s=self.options.idle_timeout_s, max_lifetime_s=self.options.max_lifetime_s
            ),
            event_log=self.event_log,
        )

    def _mount_inspector(self) -> None:
        assert self._site is not None and self.resources is not None
        endpoint = self.resources.endpoint
        inspector = Inspector(
            gateway=self.gateway,
            management=self.management,
            event_log=self.event_log,
            table_names=self.resources.table_names,
            dynamodb=lambda: aws.client("dynamodb", endpoint),
        )
        self._site.mount(INSPECTOR_PREFIX, inspector)

    async def _serve_http_api(self) -> int:
        """The second port: management API, Cognito endpoint (and recorded events); the port."""
        app = web.Application()
        self.management.add_routes(app, self.api.stage)
        self._cognito_proxy().add_routes(app, COGNITO_PATH)
        if self.options.record_events:
            app.router.add_get(EVENTS_PATH, self._recorded_events)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Each fan-out opens up to FANOUT_WORKERS (200) connections at once: aiohttp's default
        # backlog of 128 refused the rest, and the posts failed as network errors.
        await web.TCPSite(self._runner, HOST, self._management_port(), backlog=MANAGEMENT_BACKLOG).start()
        return int(self._runner.addresses[0][1])

    def _cognito_proxy(self) -> CognitoProxy:
        assert self._runtime is not None and self.resources is not None
        moto_endpoint = self.resources.endpoint
        return CognitoProxy(
            moto_endpoint=moto_endpoint,
            user_pool_id=self.resources.user_pool_id,
            user_pool_client_id=self.resources.user_pool_client_id,
            runtime=self._runtime,
            presignup=self._runtime.function("PreSignUp", constants.PRESIGNUP_HANDLER),
            admin=lambda: aws.client("cognito-idp", moto_endpoint),
            region=aws.REGION,
        )

    def _management_port(self) -> int:
        if self.options.management_port is not None:
            return self.options.management_port
        return self.options.port + 1 if self.options.port else 0

    def _apply_environment(self, management_url: str) -> None:
        assert self.resources is not None
        for name in SHELL_AWS_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(
            aws.process_environment(
                self.resources,
                management_endpoint=management_url,
                log_level=self.options.log_level,
                presence_grace_seconds=self.options.presence_grace_s,
            )
        )

    def _preload(self) -> None:
        """Import every handler now, so a missing or broken one shows at start, not at first use."""
        assert self._runtime is not None
        functions = [*self._functions().values(), self._presence_check_function()]
        functions += [
            Function("Authorizer", constants.AUTHORIZER_HANDLER),
            Function("PreSignUp", constants.PRESIGNUP_HANDLER),
        ]
        for handler, error in self._runtime.preload(functions).items():
            self.console.note(f"warning: {handler} cannot be imported ({type(error).__name__}: {error})")

    def _print_urls(self) -> None:
        assert self.urls is not None
        self.console.urls(
            {
                "Web client": self.urls.web,
                "WebSocket": self.urls.websocket,
                "Config": self.urls.config,
                "Management API": self.urls.management,
                "Cognito endpoint": self.urls.cognito,
                "Inspector": f"{self.urls.web}_local/",
            }
        )
        if self._watcher is not None:
            self.console.note(
                f"Edits under {self._watcher.shown_root} reload the handlers, sockets stay open."
            )
        for name in self.options.breaks:
            self.console.note(f"warning: {name} is deliberately broken (--break {name})")
        self.console.note("Ctrl-C stops the stack.")

    async def _recorded_events(self, request: web.Request) -> web.Response:
        return web.json_response(self.event_log.recorded())
