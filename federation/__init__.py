"""Federation: data-owner nodes, the hub catalogue, the embedded federation, the Flower apps.

Only two kinds of object leave a :class:`DataOwner`: a ``Release`` and a DP model update
(:class:`ModelUpdate`). Names are imported lazily so light users (a Flower ``query``
handler, the hub) do not pay for torch and Opacus.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DataOwner",
    "Hub",
    "InProcessFederation",
    "LearnedResponse",
    "LocalFlower",
    "ModelConfig",
    "ModelUpdate",
    "OwnerDescription",
    "OwnerReport",
    "ReleaseRequest",
    "RoundSettings",
    "TrainingRequest",
    "TrainingResult",
    "qini_coefficient",
    "run_training",
]

_WHERE = {
    "DataOwner": "federation.node",
    "Hub": "federation.hub",
    "InProcessFederation": "federation.inprocess",
    "LearnedResponse": "federation.response",
    "LocalFlower": "federation.flower_local",
    "ModelConfig": "federation.settings",
    "ModelUpdate": "federation.messages",
    "OwnerDescription": "federation.messages",
    "OwnerReport": "federation.inprocess",
    "ReleaseRequest": "federation.releases",
    "RoundSettings": "federation.settings",
    "TrainingRequest": "federation.messages",
    "TrainingResult": "federation.rounds",
    "qini_coefficient": "federation.evaluation",
    "run_training": "federation.rounds",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'federation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
