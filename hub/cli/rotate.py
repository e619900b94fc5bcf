"""``hub node rotate-keys``, ``prepare-keys`` and ``adopt-keys``: a node changes its keys.

**Routine rotation** (``rotate-keys``, e.g. yearly or when someone who could reach the key
file leaves): new keys are generated here, the hub is asked with a request signed by the
current key, and only once the hub-signed directory lists the new keys does the folder
switch to them (``hub.client.rotation``). The old keys are archived in ``keys/archive/``:
what they signed still verifies everywhere, and what was sealed to them still opens here.

**After a compromise** the current key cannot vouch for anything, so the hub operator
installs replacement keys instead (``hub admin compromise-key``): ``prepare-keys`` makes
them here and prints the public keys and fingerprints to hand over out of band;
``adopt-keys`` switches to them once the hub lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from hub.cli.common import EXIT_ERROR, EXIT_OK, CommandError, add_json_flag, emit
from hub.client import (
    HubProblem,
    NodeClient,
    NodeProfile,
    Outbox,
    OutboxError,
    VerificationFailed,
)
from hub.client.rotation import hub_lists_keys, read_staged_keys, stage_keys, switch_keys
from hub.crypto import KeyFileError, NodeKeys, key_fingerprint

__all__ = ["add_key_rotation_commands"]

Runner = Callable[[Callable[[argparse.Namespace], Coroutine[Any, Any, int]]], Any]


def _profile(root: Path) -> NodeProfile:
    from hub.cli.node import node_profile  # here: hub.cli.node imports this module

    return node_profile(root)


def _current_keys(profile: NodeProfile) -> NodeKeys:
    try:
        return profile.load_keys()
    except KeyFileError as exc:
        raise CommandError(f"node key: {exc}") from exc


def _staged(profile: NodeProfile, path: Path) -> NodeKeys:
    try:
        return read_staged_keys(profile, path)
    except KeyFileError as exc:
        raise CommandError(f"staged keys: {exc}") from exc


def _client(profile: NodeProfile, keys: NodeKeys) -> NodeClient:
    return NodeClient(
        hub_url=profile.hub_url,
        node_id=profile.node_id,
        keys=keys,
        hub_signing_key=profile.hub_signing_key,
        spool_dir=profile.spool_dir,
    )


def _fingerprints(keys: NodeKeys) -> dict[str, str]:
    return {
        "signing_fingerprint": key_fingerprint(keys.public.signing),
        "encryption_fingerprint": key_fingerprint(keys.public.encryption),
    }


def _switched(
    profile: NodeProfile, staged: Path, current: NodeKeys, new: NodeKeys, note: str
) -> dict[str, Any]:
    archived = switch_keys(profile, staged, current=current, new=new, now=datetime.now(UTC))
    return {
        "node": profile.node_id,
        **_fingerprints(new),
        **new.public.to_json(),
        "previous_signing_fingerprint": key_fingerprint(current.public.signing),
        "archived": str(archived),
        "note": note,
    }


async def _rotate(args: argparse.Namespace) -> int:
    profile = _profile(args.node)
    if profile.pending_key_file.exists():
        raise CommandError(
            f"{profile.pending_key_file} holds replacement keys from 'hub node prepare-keys': "
            "adopt them once the hub operator has installed them ('hub node adopt-keys'), or "
            "delete that file; nothing was changed"
        )
    try:
        waiting = Outbox(profile.outbox_dir).pending()
    except OutboxError as exc:
        raise CommandError(str(exc)) from exc
    if waiting:
        # Signed with the current key: once it is rotated away, the hub refuses those it
        # never received (it still answers the ones it has with their receipts).
        raise CommandError(
            f"{len(waiting)} message(s) in {profile.outbox_dir} still wait for their receipt "
            "and are signed with the current key: resend them first ('hub node outbox'), "
            "or discard them; nothing was changed"
        )
    current = _current_keys(profile)
    staged_path = profile.rotating_key_file
    if staged_path.exists():
        # An earlier run may have been answered, or not: the hub's directory says which.
        leftover = _staged(profile, staged_path)
        if await hub_lists_keys(profile, leftover):
            result = _switched(
                profile, staged_path, current, leftover, "finished an interrupted rotation"
            )
            emit(result, json_mode=args.json)
            return EXIT_OK
        staged_path.unlink()
    new = NodeKeys.generate()
    try:
        stage_keys(profile, staged_path, new)
    except KeyFileError as exc:
        raise CommandError(f"cannot stage the new keys: {exc}") from exc
    async with _client(profile, current) as client:
        try:
            await client.rotate_keys(new)
        except HubProblem as refused:
            if refused.problem.status < 500:
                # Refused: the hub changed nothing, so neither does this folder.
                staged_path.unlink()
                print("the hub refused the new keys; this node keeps its keys", file=sys.stderr)
            else:
                _unknown(staged_path)
            raise
        except (aiohttp.ClientError, ConnectionError, TimeoutError, VerificationFailed):
            _unknown(staged_path)
            raise
    result = _switched(profile, staged_path, current, new, "rotated")
    emit(result, json_mode=args.json)
    print(
        "rotated: read the new fingerprints to the hub operator if your ceremony asks for it; "
        "restart a running console so it signs with the new key",
        file=sys.stderr,
    )
    return EXIT_OK


def _unknown(staged: Path) -> None:
    print(
        f"the hub's answer did not arrive: it may or may not have the new keys, which wait in "
        f"{staged}. Run 'hub node rotate-keys' again: it asks the hub and finishes or starts "
        "afresh. Until then this node uses its current keys.",
        file=sys.stderr,
    )


def _prepare(args: argparse.Namespace) -> int:
    profile = _profile(args.node)
    _current_keys(profile)  # the folder must be readable before anything is added to it
    new = NodeKeys.generate()
    try:
        stage_keys(profile, profile.pending_key_file, new)
    except KeyFileError as exc:
        raise CommandError(str(exc)) from exc
    public_file = profile.root / "node.pending.pub.json"
    public_file.write_text(_json_text(new.public.to_json()))
    emit(
        {
            "node": profile.node_id,
            **_fingerprints(new),
            "public_keys": str(public_file),
            "staged": str(profile.pending_key_file),
        },
        json_mode=args.json,
    )
    print(
        f"give {public_file} to the hub operator over an authenticated channel and read them "
        "the fingerprints; once they have installed the keys, run 'hub node adopt-keys'",
        file=sys.stderr,
    )
    return EXIT_OK


async def _adopt(args: argparse.Namespace) -> int:
    profile = _profile(args.node)
    if not profile.pending_key_file.exists():
        raise CommandError(
            f"{profile.pending_key_file} does not exist: run 'hub node prepare-keys' first"
        )
    current = _current_keys(profile)
    new = _staged(profile, profile.pending_key_file)
    if not await hub_lists_keys(profile, new):
        raise CommandError(
            "the hub does not list the prepared keys as this node's keys yet: the hub operator "
            "installs them with 'hub admin compromise-key --new-public-keys'; nothing was changed",
            EXIT_ERROR,
        )
    result = _switched(profile, profile.pending_key_file, current, new, "adopted")
    (profile.root / "node.pending.pub.json").unlink(missing_ok=True)
    emit(result, json_mode=args.json)
    return EXIT_OK


def _json_text(document: dict[str, str]) -> str:
    return json.dumps(document, indent=2) + "\n"


def add_key_rotation_commands(
    node_sub: argparse._SubParsersAction[argparse.ArgumentParser], run: Runner
) -> None:
    """Add rotate-keys, prepare-keys and adopt-keys under ``hub node``; ``run`` wraps a
    coroutine command the way ``hub node`` runs those that talk to the hub."""
    rotate = node_sub.add_parser(
        "rotate-keys",
        help="replace this node's keys (routine rotation; old signatures stay valid)",
        description=(
            "Routine rotation: generates new keys, asks the hub with a request signed by the "
            "current key (the new key proves possession), and once the hub-signed directory "
            "lists them archives the old keys in keys/archive/ (0600) and switches to the "
            "new ones. Prints the new fingerprints. Signatures made before stay valid and "
            "payloads sealed to the old keys stay readable. If the hub refuses, nothing "
            "changes. Not for a key that may be compromised: the hub operator marks that "
            "with 'hub admin compromise-key' (see prepare-keys)."
        ),
    )
    rotate.add_argument("--node", type=Path, required=True, help="node folder")
    add_json_flag(rotate)
    rotate.set_defaults(func=run(_rotate))

    prepare = node_sub.add_parser(
        "prepare-keys",
        help="make replacement keys for the hub operator to install after a compromise",
        description=(
            "After a key compromise the old key cannot vouch for new ones: this writes new "
            "keys to keys/pending.key and their public keys to node.pending.pub.json for the "
            "hub operator ('hub admin compromise-key --new-public-keys'), and prints their "
            "fingerprints to check out of band. Then run 'hub node adopt-keys'."
        ),
    )
    prepare.add_argument("--node", type=Path, required=True, help="node folder")
    add_json_flag(prepare)
    prepare.set_defaults(func=_prepare)

    adopt = node_sub.add_parser(
        "adopt-keys",
        help="switch to the prepared keys once the hub operator has installed them",
        description=(
            "Checks that the hub-signed directory lists the keys in keys/pending.key as this "
            "node's, then archives the old keys (keys/archive/, 0600) and switches."
        ),
    )
    adopt.add_argument("--node", type=Path, required=True, help="node folder")
    add_json_flag(adopt)
    adopt.set_defaults(func=run(_adopt))
