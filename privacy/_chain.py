"""Canonical JSON and hashing shared by the ledger and releases (private helpers)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> str:
    """One byte-exact text per value: sorted keys, no spaces, floats as Python's repr."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Hash of an entry: its own fields (without ``entry_hash``) chained to the previous hash."""
    return sha256_hex(prev_hash + "\n" + canonical_json(fields))


def pseudonym(key: bytes, merchant_id: str) -> str:
    """Stable keyed pseudonym: ``own-`` + first 16 hex digits of HMAC-SHA256(key, id)."""
    return "own-" + hmac.new(key, merchant_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
