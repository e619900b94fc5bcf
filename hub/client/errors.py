"""Errors the node client raises; a hub problem keeps its RFC 9457 body."""

from __future__ import annotations

from hub.model import Problem, Violation

__all__ = [
    "ClientError",
    "HubProblem",
    "OutboxConflict",
    "PreflightFailed",
    "SendUnconfirmed",
    "VerificationFailed",
]


class ClientError(Exception):
    """Base class for node client errors."""


class HubProblem(ClientError):
    """The hub answered with problem+json."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail or ''}".strip())
        self.problem = problem


class PreflightFailed(ClientError):
    """The node's own checks refused the message before anything was sent."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.rule} at {v.path}: {v.message}" for v in violations))
        self.violations = violations

    def as_problem(self) -> Problem:
        return Problem(
            type="urn:seh:problem:preflight-refused",
            title="Refused before sending",
            status=422,
            detail="The node's pre-flight checks refused the message; nothing was sent.",
            violations=tuple(self.violations),
        )


class VerificationFailed(ClientError):
    """Something received from the hub did not verify: signature, hash, or addressing."""


class SendUnconfirmed(HubProblem):
    """The hub did not confirm a message: its answer was lost, or it was unavailable
    (connection errors, timeouts, 408, 429 or 5xx, retried with backoff until the client's
    retry policy ran out), or it refused to authenticate the request (401, not retried).

    The message may or may not have arrived. When the client has an outbox its sealed,
    signed bytes stay there (``kept``) and a retry sends exactly those bytes again: the hub
    answers with the original receipt if it has the message. A problem stated by the client
    on the hub's behalf (503, ``urn:seh:problem:send-unconfirmed``), so that whatever shows
    the hub's refusals shows this too.
    """

    def __init__(self, message_id: str, cause: str, *, kept: bool) -> None:
        if kept:
            then = (
                "Its sealed bytes are kept in the node's outbox and are resent, exactly, by "
                "the next 'hub node submit', 'hub node inbox' or 'hub node outbox', or when "
                "the console starts; the hub answers a resend with the original receipt."
            )
        else:
            then = "Send it again with the same id to learn whether it arrived."
        super().__init__(
            Problem(
                type="urn:seh:problem:send-unconfirmed",
                title="The hub did not confirm the message",
                status=503,
                detail=f"The hub did not confirm message {message_id} ({cause}). {then}",
            )
        )
        self.message_id = message_id
        self.cause = cause
        self.kept = kept


class OutboxConflict(ClientError):
    """A draft names the id of a message waiting in the outbox with other content."""

    def __init__(self, message_id: str) -> None:
        super().__init__(
            f"message {message_id} is waiting in the outbox with other content: resend it "
            "with 'hub node outbox' (or discard it there) before sending a new draft under "
            "its id"
        )
        self.message_id = message_id
