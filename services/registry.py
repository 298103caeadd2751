"""Every service the suite serves, by name: the one list.

`backcrm serve`, the suite, the migrations, the CLI, the e2e tests and the benchmark read it,
and the cross-cutting tests (hostile requests, scopes, authorization, stubs) sweep every RPC of
every contract here. A service is in it once it is implemented; adding one is one entry (see
"Adding a service" in docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf.descriptor import ServiceDescriptor

from libs.runtime import AppFactory
from services.ads.app import AdsApp
from services.ads.entrypoint import CONTRACT as ADS_CONTRACT
from services.bonus.app import BonusApp
from services.bonus.entrypoint import CONTRACT as BONUS_CONTRACT
from services.profile.app import ProfileApp
from services.profile.entrypoint import CONTRACT as PROFILE_CONTRACT
from services.recommend.app import RecommendApp
from services.recommend.entrypoint import CONTRACT as RECOMMEND_CONTRACT
from services.segmentation.app import SegmentationApp
from services.segmentation.entrypoint import CONTRACT as SEGMENTATION_CONTRACT

__all__ = ["SERVICES", "Registered", "contracts", "names"]


@dataclass(frozen=True)
class Registered:
    build: AppFactory  # (resources, peers) -> the service's App
    contract: ServiceDescriptor  # the gRPC service it serves (generated from proto/)


# In the order the suite builds and starts them.
SERVICES: Mapping[str, Registered] = MappingProxyType(
    {
        "profile": Registered(ProfileApp.build, PROFILE_CONTRACT),
        "segmentation": Registered(SegmentationApp.build, SEGMENTATION_CONTRACT),
        "bonus": Registered(BonusApp.build, BONUS_CONTRACT),
        "ads": Registered(AdsApp.build, ADS_CONTRACT),
        "recommend": Registered(RecommendApp.build, RECOMMEND_CONTRACT),
    }
)


def names() -> tuple[str, ...]:
    return tuple(SERVICES)


def contracts() -> tuple[ServiceDescriptor, ...]:
    return tuple(entry.contract for entry in SERVICES.values())
