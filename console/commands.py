"""Commands through the link, as workers: the master password asked when the link needs it
(and kept for the session when the link allows), and every outcome and failure reported in one
`on_worker_state_changed` (as Harlequin does)."""

from __future__ import annotations

from typing import Awaitable, Callable

from textual.worker import Worker, WorkerState

from console.outcomes import failure_message, success_message
from console.screens.password import PasswordScreen


class LinkCommands:
    """Mixed into the App: needs `self.link`, `self._password`, `self._jobs`, `refresh_now`."""

    def _with_password(self, verb: str, why: str, then) -> None:
        if verb not in self.link.password_actions:
            then(None)
        elif self.link.remembers_password and self._password:
            then(self._password)
        else:
            self.push_screen(PasswordScreen(why), lambda password: then(password) if password else None)

    def _run(self, verb: str, call: Callable[[str | None], Awaitable], subject: str = "",
             password: str | None = None) -> None:
        """Send `call(password)` through the link in a worker; the outcome is reported by
        `on_worker_state_changed`."""
        worker = self.run_worker(call(password), name=verb, group="link", exit_on_error=False, description=subject)
        self._jobs[worker] = (verb, subject, password, call)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        job = self._jobs.get(event.worker)
        if job is None or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        del self._jobs[event.worker]
        verb, subject, password, call = job
        if event.state is WorkerState.SUCCESS:
            if password and self.link.remembers_password:
                self._password = password
            message, severity = success_message(verb, subject, event.worker.result)
        elif event.state is WorkerState.ERROR:
            error = event.worker.error
            if password and getattr(error, "unauthorized", False):
                self._password = None
            if (getattr(error, "status", 0) == 403 and password is None and self.link.remembers_password
                    and verb in ("cancel", "kill")):
                # the token lacks the scope: the master password can do it
                self._with_password(verb, f"The token may not {verb}: the master password can",
                                    lambda pw: self._run(verb, call, subject, pw))
                if self._password is None:  # asking: say why
                    self.notify(f"{failure_message(verb, subject, error)[0]}; asking the master password",
                                severity="warning")
                return
            message, severity = failure_message(verb, subject, error)
        else:
            return
        self.notify(message, severity=severity, timeout=8 if severity == "error" else 5)
        self.refresh_now()
