/*
 * format.h: every on-disk constant of tsdb in one place: magics, versions,
 * record and file layouts.  docs/storage.md describes the same format in
 * prose; change both together.  All integers on disk are little-endian.
 */
#ifndef TSDB_FORMAT_H
#define TSDB_FORMAT_H

#include <stdint.h>

/* ---- data directory ------------------------------------------------------
 * <dir>/LOCK            flock'd while open
 * <dir>/wal/            segments and checkpoint (WAL section below)
 * <dir>/blocks/<ulid>/  immutable blocks (block section below)
 * <dir>/corrupt/        blocks set aside because a CRC failed
 */

/* ---- chunk encoding (tsdb/codec.c) ---- */

/* ---- WAL (tsdb/wal.c) ---- */

/* ---- blocks and rollups (tsdb/block.c) ---- */

#endif
