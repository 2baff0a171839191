"""The published data dictionary: sources, their kinds and their mapping profiles."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ActorDep, RegistryDep
from api.schemas import MappingFieldOut, MappingOut, SourceOut, SourcePage
from mdm.flow.survivorship import field_rule
from mdm.model.errors import SourceNotFound
from mdm.services.delivery import sync_of
from mdm.services.sources import describe_mapping, describe_source

router = APIRouter(prefix="/v1/sources", tags=["sources"])


@router.get("", response_model=SourcePage)
async def sources(registry: RegistryDep, actor: ActorDep) -> SourcePage:
    """Every source the registry takes records from, with its kind and profile, and what
    its mapping did since the process started."""
    return SourcePage(
        items=[
            SourceOut(**describe_source(s), counters=registry.mapping_stats.of(s.key))
            for s in registry.sources
        ]
    )


@router.get("/{source}/mapping", response_model=MappingOut, responses={404: {}})
async def mapping(source: str, registry: RegistryDep, actor: ActorDep) -> MappingOut:
    """The data dictionary of one source: for every canonical field, where it is read from,
    its type, format, whether it is required, the transformation, and which source kinds
    own it in the golden record."""
    found = registry.sources.get(source)
    if found is None:
        raise SourceNotFound(source)
    described = describe_mapping(found)
    sync = sync_of(registry, source, [f["field"] for f in described["fields"]])
    fields = []
    for f in described.pop("fields"):
        rule = field_rule(f["field"], registry.rules)
        fields.append(
            MappingFieldOut(
                **f,
                owner=list(rule.owners),
                survivorship=rule.strategy.value,
                sync=sync[f["field"]],
            )
        )
    return MappingOut(**described, fields=fields)
