#ifndef POWERCUT_VFS_H
#define POWERCUT_VFS_H

/// A SQLite VFS for tests that simulates a power cut: it wraps the default (unix) VFS and, for
/// files under a tracked directory, remembers what was written since each file's last xSync, so
/// that `powercut_apply` can put every file back to its last synced contents, as a disk would
/// look after the power went off.
///
/// It is registered as the default VFS (GRDB opens connections by path, with no VFS name); files
/// outside the tracked directory go straight to the unix VFS, untouched and unrecorded.

/// Registers the shim as the default VFS and records files whose path starts with `prefix`.
/// Returns a SQLite result code.
int powercut_install(const char *prefix);
/// Makes the unix VFS the default again and forgets everything recorded.
void powercut_uninstall(void);
/// Forgets what was recorded and counts operations from zero; with `cut_at` > 0, the power goes
/// off at that write, sync or truncate of a tracked file: it and every later one fail with an I/O
/// error and change nothing.
void powercut_arm(long long cut_at);
/// Writes, syncs and truncates of tracked files since the last `powercut_arm`.
long long powercut_operations(void);
/// Whether the power went off.
int powercut_is_cut(void);
/// After every connection is closed: gives each tracked file its last synced contents back
/// (the shared-memory index, which no power cut keeps, is deleted). With `tear_last_write`, the
/// last unsynced write of each file is half undone (a torn page). Returns 0, or -1 on an error.
int powercut_apply(int tear_last_write);

#endif
