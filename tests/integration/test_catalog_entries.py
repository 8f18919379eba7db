"""Every catalogue entry through its lifecycle (:mod:`chaton.testing.catalog_entry`):
deploy → health → settings change → upgrade and rollback → backup and restore of its
``user_data`` → its probes, on its stand-in (the entry's manifest on the small test image).

The entries are the folders of ``chaton/services/catalog/``: one class each, made here,
so a new entry is tested without being named. Etherpad runs on its real image too, in
``test_etherpad.py``.
"""

from __future__ import annotations

import pytest

from chaton.services import catalog
from chaton.testing.catalog_entry import CatalogEntryTests

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]


def _class_name(entry: str) -> str:
    return "Test" + "".join(part.title() for part in entry.split("-"))


for _entry in sorted(catalog.real_manifests()):
    globals()[_class_name(_entry)] = type(_class_name(_entry), (CatalogEntryTests,),
                                          {"entry": _entry, "__module__": __name__})
