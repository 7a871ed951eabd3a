"""Uploaded files the pages hand to code that reads paths (evaluation, fine-tuning)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from quintet.core.store import ModelStore


def save_upload(upload: Any) -> Path:
    """Keep an uploaded file (a Streamlit ``UploadedFile``) in ``$QUINTET_HOME/uploads``;
    the same content under the same name gives the same file, written once."""
    data = upload.getvalue()
    folder = ModelStore().home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:10]}-{Path(upload.name).name}"
    if not path.exists():
        path.write_bytes(data)
    return path
