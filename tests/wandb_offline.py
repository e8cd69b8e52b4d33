"""Read what an offline W&B run recorded (its ``run-*.wandb`` file) without the network.

The file is a LevelDB-style log (7-byte file header, 32 KiB blocks, records with a 7-byte
header: CRC32, length, type FULL/FIRST/MIDDLE/LAST) of ``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

FILE_HEADER, RECORD_HEADER, BLOCK = 7, 7, 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pending, offset = [], b"", FILE_HEADER
    while offset + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < RECORD_HEADER:
            offset += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + RECORD_HEADER])
        payload = data[offset + RECORD_HEADER : offset + RECORD_HEADER + length]
        offset += RECORD_HEADER + length
        if kind == 0 and length == 0:
            continue
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def finished_records(path: Path, timeout: float = 60.0) -> list[Any]:
    """The records of ``path`` once its ``exit`` record is there: W&B's writer (the wandb-core
    service) may still be flushing the file for a moment after ``wandb.finish()`` returns."""
    deadline = time.monotonic() + timeout
    while True:
        found = records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def run_summary(path: Path) -> dict[str, Any]:
    """``{"id", "name", "group", "job_type", "config", "history", "summary"}`` of the offline run
    stored in ``path``: ``history`` is one dict per ``log`` call (with its ``_step``), ``summary``
    the last summary values."""
    summary: dict[str, Any] = {"config": {}, "history": [], "summary": {}}
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            summary.update(
                id=record.run.run_id,
                name=record.run.display_name,
                group=record.run.run_group,
                job_type=record.run.job_type,
            )
            items = record.run.config.update
        elif kind == "config":
            items = record.config.update
        elif kind == "history":
            summary["history"].append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
            continue
        elif kind == "summary":
            for item in record.summary.update:
                summary["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
            continue
        else:
            continue
        for item in items:
            summary["config"][item.key] = json.loads(item.value_json)
    return summary


def run_history(path: Path) -> list[dict[str, Any]]:
    """The rows the offline run logged (``log_metrics``), in order, each ``{key: value}``."""
    return [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        for record in records(path)
        if record.WhichOneof("record_type") == "history"
    ]
