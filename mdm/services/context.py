"""What every use case needs: the database, the settings and the scorer."""

from __future__ import annotations

from dataclasses import dataclass, field

from mdm.config import Settings
from mdm.flow.decide import Thresholds
from mdm.flow.score import FellegiSunterScorer, Scorer
from mdm.services.working_set import GenericKeys
from mdm.store.db import make_engine
from mdm.store.uow import Database


@dataclass
class Registry:
    database: Database
    settings: Settings
    scorer: Scorer = field(default_factory=FellegiSunterScorer)
    # Values the registry has seen shared by a crowd (test@test.com): not worth a lock.
    generic_keys: GenericKeys = field(default_factory=GenericKeys)

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        return cls(database=Database(engine), settings=settings)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            auto_merge=self.settings.auto_merge_threshold,
            review=self.settings.review_threshold,
        )

    def close(self) -> None:
        self.database.dispose()
