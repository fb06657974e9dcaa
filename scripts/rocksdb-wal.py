#!/usr/bin/python3
"""The write batches in a RocksDB database's write-ahead logs: an independent
ground truth for ckb-libbpf's WRITE bytes (a batch's data size is exactly
the payload of the logical WAL record it becomes, when one thread writes).

    scripts/rocksdb-wal.py DB_DIR

Prints one JSON object: {"files": N, "batches": N, "bytes": N, "entries": N,
"other_records": N}. Reads every *.log file in DB_DIR, oldest first, in
RocksDB's log format: 32 KiB blocks of physical records (crc32c u32,
length u16, type u8, and for the recyclable types a u32 log number), a
logical record being one FULL record or FIRST, MIDDLE..., LAST; a block's
last < header bytes are padding. A write batch's payload starts with its
sequence number (u64) and entry count (u32). Exit 1 on a malformed log.
"""
import json
import os
import struct
import sys

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
# Recyclable variants of the four (their header carries the log number).
RECYCLABLE = {5: FULL, 6: FIRST, 7: MIDDLE, 8: LAST}
# Records that are not write batches: WAL compression, timestamp sizes,
# predecessor-WAL info (and their recyclable forms).
META = {9, 10, 11, 130, 131}


def records(data):
    """Yields (type, payload) logical records of one log file."""
    pos = 0
    pending = None
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        if pos + 7 > len(data):
            break
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        header = 7
        if kind in RECYCLABLE or kind in (11, 131):
            header = 11
        if kind == 0 and length == 0:
            # Zeroed space: preallocated, never written.
            pos += left
            continue
        end = pos + header + length
        if end > len(data):
            break  # a record cut short by the writer still running
        payload = data[pos + header:end]
        pos = end
        if kind in META:
            yield ("meta", payload)
            continue
        kind = RECYCLABLE.get(kind, kind)
        if kind == FULL:
            yield ("batch", payload)
        elif kind == FIRST:
            pending = bytearray(payload)
        elif kind == MIDDLE and pending is not None:
            pending += payload
        elif kind == LAST and pending is not None:
            pending += payload
            yield ("batch", bytes(pending))
            pending = None
        else:
            raise ValueError(f"record type {kind} at offset {pos - length - header}")


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    db = sys.argv[1]
    logs = sorted(
        (f for f in os.listdir(db) if f.endswith(".log") and f[:-4].isdigit()),
        key=lambda f: int(f[:-4]),
    )
    out = {"files": len(logs), "batches": 0, "bytes": 0, "entries": 0, "other_records": 0}
    for name in logs:
        with open(os.path.join(db, name), "rb") as f:
            data = f.read()
        try:
            for kind, payload in records(data):
                if kind == "meta":
                    out["other_records"] += 1
                    continue
                if len(payload) < 12:
                    raise ValueError(f"a {len(payload)}-byte batch")
                out["batches"] += 1
                out["bytes"] += len(payload)
                out["entries"] += struct.unpack_from("<I", payload, 8)[0]
        except ValueError as e:
            print(f"rocksdb-wal: {db}/{name}: {e}", file=sys.stderr)
            return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
