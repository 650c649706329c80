"""Commands through the link, as workers: the master password asked when the link needs it
(and kept for the session when the link allows), and every outcome and failure reported in one
place (as Harlequin does).

`LinkCommands` is a part the app owns: it is given the app (to run workers, push the password
screen and notify, through Textual's public API), the link, and what to call once a command has
finished (`finished`, the app's refresh). The app hands it its `Worker.StateChanged` events."""

from __future__ import annotations

from typing import Awaitable, Callable

from textual.app import App
from textual.worker import Worker, WorkerState

from console.link import EngineLink
from console.outcomes import failure_message, success_message
from console.screens.password import PasswordScreen
from engine.api.errors import ApiError

Call = Callable[[str | None], Awaitable]
FORBIDDEN = 403  # a token without the scope: the master password may still do it


class LinkCommands:
    def __init__(self, app: App, link: EngineLink, finished: Callable[[], None]) -> None:
        self.app, self.link, self.finished = app, link, finished
        self.password: str | None = None  # remembered for the session (remote links only)
        self._jobs: dict[Worker, tuple[str, str, str | None, Call]] = {}  # -> (verb, subject, password, call)

    def with_password(self, verb: str, why: str, then: Callable[[str | None], None]) -> None:
        """`then(password)`: at once when `verb` needs no master password (None) or the session
        remembers it, else once the trader typed one (never, if they gave up)."""
        if verb not in self.link.password_actions:
            then(None)
        elif self.link.remembers_password and self.password:
            then(self.password)
        else:
            self.ask_password(why, then)

    def ask_password(self, why: str, then: Callable[[str | None], None]) -> None:
        self.app.push_screen(PasswordScreen(why), lambda password: then(password) if password else None)

    def run(self, verb: str, call: Call, subject: str = "", password: str | None = None) -> None:
        """Send `call(password)` through the link in a worker; `worker_changed` reports it."""
        worker = self.app.run_worker(call(password), name=verb, group="link", exit_on_error=False,
                                     description=subject)
        self._jobs[worker] = (verb, subject, password, call)

    def worker_changed(self, event: Worker.StateChanged) -> bool:
        """Report a command's outcome once its worker is done; False for workers not ours."""
        job = self._jobs.get(event.worker)
        if job is None:
            return False
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return True
        del self._jobs[event.worker]
        verb, subject, password, call = job
        if event.state is WorkerState.CANCELLED:
            return True
        if event.state is WorkerState.SUCCESS:
            if password and self.link.remembers_password:
                self.password = password
            message, severity = success_message(verb, subject, event.worker.result)
        else:
            error = event.worker.error
            refused = error if isinstance(error, ApiError) else None
            if password and refused is not None and refused.unauthorized:
                self.password = None
            if (refused is not None and refused.status == FORBIDDEN and password is None
                    and self.link.remembers_password and verb in ("cancel", "kill")):
                # the token lacks the scope: the master password can do it
                self.app.notify(f"{failure_message(verb, subject, error)[0]}; asking the master password",
                                severity="warning")
                self.ask_password(f"The token may not {verb}: the master password can",
                                  lambda pw: self.run(verb, call, subject, pw))
                return True
            message, severity = failure_message(verb, subject, error)
        self.app.notify(message, severity=severity, timeout=8 if severity == "error" else 5)
        self.finished()
        return True
