#!/usr/bin/env python3
"""Which pages the queue's commits write: the valid frames of a copy of a WAL, grouped into
transactions, each frame's page named by `dbstat` on a copy of the database (with that WAL).

Usage: scripts/wal-pages.py QUEUE_COPY.sqlite   (QUEUE_COPY.sqlite-wal beside it; both are copies:
opening the database applies the WAL to it). Prints pages per transaction and each object's share.
Pages dbstat does not name are the pointer-map (auto_vacuum), free-list trunk and leaf pages, or
pages freed since the WAL began."""
import collections
import os
import sqlite3
import struct
import sys


def wal_frames(path):
    """(page number, commit size or 0) of every frame SQLite would read, checksums and salts checked."""
    data = open(path, "rb").read()
    if len(data) < 32:
        return []
    magic, _version, page_size, _seq, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:32])
    endian = "<" if magic == 0x377F0682 else ">"

    def checksum(chunk, s1, s2):
        words = struct.unpack(endian + "%dI" % (len(chunk) // 4), chunk)
        for i in range(0, len(words), 2):
            s1 = (s1 + words[i] + s2) & 0xFFFFFFFF
            s2 = (s2 + words[i + 1] + s1) & 0xFFFFFFFF
        return s1, s2

    s1, s2 = checksum(data[:24], 0, 0)
    if (s1, s2) != (c1, c2):
        return []
    frames, pending, offset = [], [], 32
    while offset + 24 + page_size <= len(data):
        page, commit, f_salt1, f_salt2, f1, f2 = struct.unpack(">6I", data[offset:offset + 24])
        if (f_salt1, f_salt2) != (salt1, salt2):
            break
        s1, s2 = checksum(data[offset:offset + 8], s1, s2)
        s1, s2 = checksum(data[offset + 24:offset + 24 + page_size], s1, s2)
        if (s1, s2) != (f1, f2):
            break
        pending.append((page, commit))
        if commit:
            frames.extend(pending)
            pending = []
        offset += 24 + page_size
    return frames


def main():
    db = sys.argv[1]
    frames = wal_frames(db + "-wal")
    if not frames:
        print("no committed frames in", db + "-wal")
        return
    connection = sqlite3.connect(db)
    names = dict((page, name) for name, page in connection.execute("SELECT name, pageno FROM dbstat"))
    auto_vacuum = connection.execute("PRAGMA auto_vacuum").fetchone()[0]
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    # Pointer-map pages: page 2, then every usable_size/5 + 1 pages (reserved bytes are 0 here).
    span = page_size // 5 + 1
    pointer_map = set(range(2, 10_000_000, span)) if auto_vacuum else set()

    def name(page):
        if page == 1:
            return "page 1 (header, schema)"
        if page in pointer_map:
            return "pointer map (auto_vacuum)"
        return names.get(page, "free list / freed")

    transactions, current = [], []
    for page, commit in frames:
        current.append(page)
        if commit:
            transactions.append(current)
            current = []
    shares = collections.Counter(name(page) for page, _ in frames)
    total = len(frames)
    print(f"{os.path.basename(db)}: {total} frames, {len(transactions)} transactions, "
          f"{total / len(transactions):.1f} pages per transaction, auto_vacuum {auto_vacuum}")
    for object_name, count in shares.most_common():
        print(f"  {count / total:6.1%}  {count / len(transactions):5.2f}/transaction  {object_name}")


if __name__ == "__main__":
    main()
