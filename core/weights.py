"""Checks on a model folder before transformers touches it.

transformers reports a truncated safetensors file or a folder without weights with a
traceback from deep inside its loader; these checks turn each case into one line that
names the file and says what to do.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from quintet.core.errors import ModelLoadError

DEFAULT_HINT = "download or build the model again"
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "tf_model.h5")
SAFETENSORS_INDEX = "model.safetensors.index.json"


def safetensors_files(folder: Path) -> list[Path]:
    """The safetensors weight files of a model folder (single file or sharded)."""
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError) as exc:
            raise ModelLoadError(f"{index} is not a valid safetensors index: {exc}") from None
        return [folder / shard for shard in shards]
    return sorted(folder.glob("*.safetensors"))


def check_safetensors_file(path: Path, hint: str = DEFAULT_HINT) -> None:
    """Fail if ``path`` is missing, truncated or has a corrupt header.

    The format is an 8-byte little-endian header length, a JSON header giving each
    tensor's byte range, then the data; the file must be exactly as long as the header
    says. Reading only the header keeps this check instant for multi-GB files.
    """
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} is missing: {hint}")
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            # Real headers are kilobytes; a huge length means the first bytes are not a header.
            if header_len > 100_000_000:
                raise ValueError(f"implausible header length {header_len}")
            if header_len > size - 8:
                raise ModelLoadError(
                    f"weights file {path} is truncated ({size} bytes, shorter than its own "
                    f"header): {hint}"
                )
            header = json.loads(handle.read(header_len))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"weights file {path} is corrupt ({exc}): {hint}") from None
    ends = [
        info["data_offsets"][1]
        for key, info in header.items()
        if key != "__metadata__" and isinstance(info, dict) and "data_offsets" in info
    ]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise ModelLoadError(
            f"weights file {path} is truncated ({size} bytes, expected {expected}): {hint}"
        )


def check_model_folder(
    folder: Path, allow_pickle_weights: bool = False, hint: str = DEFAULT_HINT
) -> None:
    """Fail with one line unless ``folder`` holds a config and loadable, safe weights."""
    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is not a directory")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"{folder} is not a model directory: it has no config.json "
            "(expected a folder written by save_pretrained)"
        )
    shards = safetensors_files(folder)
    if shards:
        for shard in shards:
            check_safetensors_file(shard, hint)
        return
    pickles = [name for name in PICKLE_WEIGHTS if (folder / name).exists()]
    if pickles and not allow_pickle_weights:
        raise ModelLoadError(
            f"{folder} has only pickle weights ({pickles[0]}), which can run code when loaded; "
            "Quintet loads safetensors only. Convert the model to safetensors, or pass "
            "allow_pickle_weights=True (--allow-pickle) if you trust its source"
        )
    if not pickles:
        raise ModelLoadError(f"{folder} has a config.json but no weights (*.safetensors)")
