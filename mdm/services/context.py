"""What every use case needs: the database, the settings and the scorer."""

from __future__ import annotations

from datetime import UTC, datetime

from mdm.config import Settings
from mdm.flow.decide import Thresholds
from mdm.flow.score import FellegiSunterScorer, ModelParameters, Scorer
from mdm.flow.survivorship import DEFAULT_RULES
from mdm.mapping.load import SHIPPED_PROFILES, load_rules, load_sources
from mdm.mapping.profile import Sources
from mdm.mapping.stats import MappingStats
from mdm.model import redaction
from mdm.services.working_set import GenericKeys, WorkingSet
from mdm.store.db import make_engine
from mdm.store.registry import RegistryRepository
from mdm.store.sealing import Sealer
from mdm.store.uow import Database


class Registry:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        scorer: Scorer | None = None,
        sources: Sources | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self._scorer = scorer
        # Profiles are read and checked here, at start-up: a bad one stops the process
        # with its file and line rather than failing records one by one later.
        self.sources = sources if sources is not None else sources_of(settings)
        # Source key -> kind (crm, ats, hris): who owns which golden field. Read on every
        # unit of work; the sources are fixed for the life of the process.
        self.source_kinds: dict[str, str] = {s.key: s.kind.value for s in self.sources}
        self.mapping_stats = MappingStats()
        # Redaction reads the sensitive fields on every output; they are the process's.
        redaction.configure(settings.sensitive_fields)
        self.rules = (
            load_rules(settings.survivorship_file) if settings.survivorship_file else DEFAULT_RULES
        )
        # Values the registry has seen shared by a crowd (test@test.com): not worth a lock.
        self.generic_keys = GenericKeys()

    def working_set(
        self, repo: RegistryRepository, scorer: Scorer, *, now: datetime | None = None
    ) -> WorkingSet:
        """A working set over `repo` with this registry's block cap, source kinds,
        survivorship rules and learnt generic keys. `scorer` is read by the caller before
        its unit of work begins: reading it may load the model."""
        return WorkingSet(
            repo,
            scorer,
            now=now or datetime.now(UTC),
            block_cap=self.settings.max_block_size,
            kinds=self.source_kinds,
            rules=self.rules,
            generic_keys=self.generic_keys,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        return cls(database=Database(engine, Sealer(settings.keyring)), settings=settings)

    @property
    def scorer(self) -> Scorer:
        """The active trained model, read once on first use; the shipped defaults before
        any training. Read lazily so that a process starts while the database is down."""
        if self._scorer is None:
            self._scorer = FellegiSunterScorer(self.active_parameters())
        return self._scorer

    @scorer.setter
    def scorer(self, scorer: Scorer) -> None:
        self._scorer = scorer

    def active_parameters(self) -> ModelParameters | None:
        """The stored active model; None before any training."""
        with self.database.uow() as uow:
            raw = uow.registry.active_model()
        return ModelParameters.from_json(raw) if raw else None

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            auto_merge=self.settings.auto_merge_threshold,
            review=self.settings.review_threshold,
        )

    def close(self) -> None:
        self.database.dispose()


def sources_of(settings: Settings) -> Sources:
    directories = [SHIPPED_PROFILES] if settings.shipped_profiles else []
    if settings.profiles_dir is not None:
        directories.append(settings.profiles_dir)
    return load_sources(directories)
