"""What a process other than the server builds for itself from the server's settings.

A job process or a serving instance needs only the metadata store (to read its request and write its
progress), the lake, the algorithms and the account; never the services, the engine or the faces. It
attaches to a home the server has already prepared: no migrations, no credentials.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sagelab.account import Account, HomePaths
from sagelab.algorithms.registry import AlgorithmRegistry, builtin_algorithms
from sagelab.kms.envelope import LakeKeys
from sagelab.kms.master import MasterKey
from sagelab.kms.service import KmsService
from sagelab.lake.blobs import BlobStore, open_blob_store
from sagelab.security.credentials import new_account_id
from sagelab.settings import Settings
from sagelab.storage.db import Database
from sagelab.storage.resources import ResourceStore

#: Where the account id is kept in the metadata store: created by the server's first start.
ACCOUNT_ID_KEY = "account_id"


@dataclasses.dataclass
class ProcessParts:
    settings: Settings
    resources: ResourceStore
    blobs: BlobStore
    algorithms: AlgorithmRegistry
    account: Account
    home: HomePaths
    db: Database

    def close(self) -> None:
        self.db.close()


def algorithm_registry() -> AlgorithmRegistry:
    """The built-in algorithms, the framework images of script mode, and the serving-only containers."""
    from sagelab.recipes.serving import RecipeServing
    from sagelab.script_mode.algorithm import framework_algorithms

    return AlgorithmRegistry(builtin_algorithms(), script_mode=framework_algorithms(), serving=[RecipeServing()])


def warm_job_process() -> None:
    """What a stand-by job process does before it is handed a job: warm the libraries jobs use, and build the
    algorithm registry once, so that a job's `attach` finds every algorithm module imported already (importing
    them took about 50 ms of each job's start)."""
    from sagelab.compute.warmup import warm_libraries

    warm_libraries()
    algorithm_registry()


def read_account(resources: ResourceStore, settings: Settings) -> Account:
    return Account(resources.get_or_create_value(ACCOUNT_ID_KEY, new_account_id), settings.region)


def attach(settings: Settings | dict[str, Any]) -> ProcessParts:
    """The parts of the server whose settings are given (as a `Settings` or as `Settings.to_dict()`)."""
    if not isinstance(settings, Settings):
        settings = Settings.from_dict(settings)
    db = Database(settings.resolved_database_url)
    resources = ResourceStore(db)
    account = read_account(resources, settings)
    # The lake opens objects encrypted at rest with the server's keys, sealed under the home's master key.
    keys = LakeKeys(lambda: KmsService(resources=resources, account=account, master=MasterKey(settings.home / "kms")))
    return ProcessParts(settings=settings, resources=resources, blobs=open_blob_store(settings, keys),
                        algorithms=algorithm_registry(), account=account,
                        home=HomePaths(settings.home), db=db)
