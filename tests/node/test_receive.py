"""The receiving node's inbox never crashes on a payload and never sticks on an answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.cli.node import receive_inbox
from hub.client import HubProblem, PayloadSource
from tests.conftest import HubFixture
from tests.workflows.helpers import HEALTH, POLICE, fields, request_doc, send


def _note() -> dict[str, object]:
    return {**request_doc(), "kind": "note", "recipients": [HEALTH], "scope": []}


async def test_a_json_payload_that_is_not_json_is_rejected_not_a_crash(
    hub: HubFixture, tmp_path: Path
) -> None:
    async with hub.client(POLICE) as police, hub.client(HEALTH) as health:
        broken = await police.send(
            fields(_note()), PayloadSource(media_type="application/json", data=b"{not json")
        )
        received = await receive_inbox(health, hub.profile(tmp_path, HEALTH), wait=0, limit=50)
        (arrived,) = [m for m in received if m["message_id"] == broken.message_id]
        assert any(
            line.startswith("PAYLOAD-04 $.payload: not valid JSON") for line in arrived["rejected"]
        )
        status = await police.status(broken.message_id)
        assert [(r.state, r.rejection_rules) for r in status.recipients] == [
            ("rejected", ("PAYLOAD-04",))
        ]


async def test_a_message_answered_before_does_not_stick_the_inbox(
    hub: HubFixture, tmp_path: Path
) -> None:
    """The hub keeps a recipient's first answer; meeting it again, the inbox moves on."""
    async with hub.client(POLICE) as police, hub.client(HEALTH) as health:
        first = await send(police, _note(), {"note": "SYNTHETIC"})
        second = await send(police, _note(), {"note": "SYNTHETIC"})
        # An earlier run rejected the first message, then stopped before moving the cursor.
        await health.reject(await health.fetch(first.message_id), ["PAYLOAD-04"], [])

        profile = hub.profile(tmp_path, HEALTH)
        received = await receive_inbox(health, profile, wait=0, limit=50)
        by_id = {m["message_id"]: m for m in received}
        assert "answered_before" in by_id[first.message_id]
        assert "answered_before" not in by_id[second.message_id]
        assert await receive_inbox(health, profile, wait=0, limit=50) == []
        status = await police.status(first.message_id)
        assert [r.state for r in status.recipients] == ["rejected"]


async def test_racing_answers_leave_one_answer_and_one_log_entry(hub: HubFixture) -> None:
    """An acknowledgement and a rejection sent at once: exactly one stands, the other is
    told so (409), and the transparency log records only the one that stands."""
    async with hub.client(POLICE) as police, hub.client(HEALTH) as health:
        for _ in range(5):
            sent = await send(police, _note(), {"note": "SYNTHETIC"})
            message = await health.fetch(sent.message_id)
            answers = await asyncio.gather(
                health.acknowledge(message),
                health.reject(message, ["PAYLOAD-04"], []),
                return_exceptions=True,
            )
            won = [a for a in answers if not isinstance(a, BaseException)]
            lost = [a for a in answers if isinstance(a, HubProblem)]
            assert len(won) == 1
            assert [problem.problem.status for problem in lost] == [409]
            entries = (
                await health._call("GET", "/v1/audit/entries", params={"start": 0, "end": 1000})
            )[1]["entries"]
            answered = [
                e["entry"]["action"]
                for e in entries
                if e["entry"].get("message_id") == sent.message_id
                and e["entry"]["action"] in ("acknowledged", "rejected")
            ]
            assert answered == [won[0].state]
