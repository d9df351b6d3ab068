// See include/powercut_vfs.h. Kept deliberately simple: one global lock, pre-images of unsynced
// writes in memory (test workloads are small), and no real fsync (the shim decides what is
// "on disk", so the test does not wait for the disk).
#include "powercut_vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TRACKED 64

typedef struct {
    sqlite3_int64 offset;
    int length;
    unsigned char *bytes; // what the file held there before the write or truncate
    int truncated;        // cut off by a truncate rather than overwritten
} PreImage;

typedef struct {
    char path[1024];
    sqlite3_int64 synced_size;
    PreImage *images;
    int count, capacity;
} Tracked;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; // the unix VFS's file, allocated right after this struct
    Tracked *tracked;   // NULL: passed through
} ShimFile;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3_vfs shim_vfs;
static sqlite3_vfs *unix_vfs;
static char prefix[1024];
static Tracked tracked[MAX_TRACKED];
static long long operations, cut_at;
static int is_cut;

static void forget(Tracked *t) {
    for (int i = 0; i < t->count; i++) free(t->images[i].bytes);
    free(t->images);
    t->images = NULL;
    t->count = t->capacity = 0;
}

static Tracked *find(const char *path, int create) {
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].path[0] && strcmp(tracked[i].path, path) == 0) return &tracked[i];
    if (!create) return NULL;
    for (int i = 0; i < MAX_TRACKED; i++)
        if (!tracked[i].path[0]) {
            strncpy(tracked[i].path, path, sizeof(tracked[i].path) - 1);
            tracked[i].synced_size = 0;
            return &tracked[i];
        }
    return NULL;
}

// Counts one write, sync or truncate; returns whether the power is still on for it. Lock held.
static int power_on(void) {
    if (is_cut) return 0;
    operations++;
    if (cut_at > 0 && operations >= cut_at) {
        is_cut = 1;
        return 0;
    }
    return 1;
}

static int remember(Tracked *t, sqlite3_file *real, sqlite3_int64 offset, int length, int truncated) {
    if (t->count == t->capacity) {
        int capacity = t->capacity ? t->capacity * 2 : 64;
        PreImage *images = realloc(t->images, sizeof(PreImage) * capacity);
        if (!images) return SQLITE_NOMEM;
        t->images = images;
        t->capacity = capacity;
    }
    unsigned char *bytes = malloc(length > 0 ? length : 1);
    if (!bytes) return SQLITE_NOMEM;
    int rc = real->pMethods->xRead(real, bytes, length, offset);
    // Past the end the unix VFS fills with zeros; the truncation to the synced size removes it.
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
        free(bytes);
        return rc;
    }
    t->images[t->count++] = (PreImage){offset, length, bytes, truncated};
    return SQLITE_OK;
}

static int shim_close(sqlite3_file *f) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xClose(s->real);
}
static int shim_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xRead(s->real, buf, amt, off);
}
static int shim_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
    ShimFile *s = (ShimFile *)f;
    if (!s->tracked) return s->real->pMethods->xWrite(s->real, buf, amt, off);
    pthread_mutex_lock(&lock);
    int rc = SQLITE_IOERR_WRITE;
    if (power_on()) {
        rc = remember(s->tracked, s->real, off, amt, 0);
        if (rc == SQLITE_OK) rc = s->real->pMethods->xWrite(s->real, buf, amt, off);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size) {
    ShimFile *s = (ShimFile *)f;
    if (!s->tracked) return s->real->pMethods->xTruncate(s->real, size);
    pthread_mutex_lock(&lock);
    int rc = SQLITE_IOERR_TRUNCATE;
    if (power_on()) {
        sqlite3_int64 current = 0;
        rc = s->real->pMethods->xFileSize(s->real, &current);
        if (rc == SQLITE_OK && current > size) rc = remember(s->tracked, s->real, size, (int)(current - size), 1);
        if (rc == SQLITE_OK) rc = s->real->pMethods->xTruncate(s->real, size);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
static int shim_sync(sqlite3_file *f, int flags) {
    ShimFile *s = (ShimFile *)f;
    if (!s->tracked) return s->real->pMethods->xSync(s->real, flags);
    pthread_mutex_lock(&lock);
    int rc = SQLITE_IOERR_FSYNC;
    if (power_on()) {
        sqlite3_int64 size = 0;
        rc = s->real->pMethods->xFileSize(s->real, &size);
        if (rc == SQLITE_OK) {
            forget(s->tracked);
            s->tracked->synced_size = size;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xFileSize(s->real, size);
}
static int shim_lock(sqlite3_file *f, int level) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xLock(s->real, level);
}
static int shim_unlock(sqlite3_file *f, int level) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xUnlock(s->real, level);
}
static int shim_check_reserved(sqlite3_file *f, int *out) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xCheckReservedLock(s->real, out);
}
static int shim_file_control(sqlite3_file *f, int op, void *arg) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xFileControl(s->real, op, arg);
}
static int shim_sector_size(sqlite3_file *f) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xSectorSize(s->real);
}
static int shim_device_characteristics(sqlite3_file *f) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xDeviceCharacteristics(s->real);
}
static int shim_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xShmMap(s->real, page, size, extend, out);
}
static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xShmLock(s->real, offset, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f) {
    ShimFile *s = (ShimFile *)f;
    s->real->pMethods->xShmBarrier(s->real);
}
static int shim_shm_unmap(sqlite3_file *f, int delete_flag) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xShmUnmap(s->real, delete_flag);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xFetch(s->real, off, amt, out);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
    ShimFile *s = (ShimFile *)f;
    return s->real->pMethods->xUnfetch(s->real, off, p);
}

static const sqlite3_io_methods shim_methods = {
    3, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_file_size, shim_lock, shim_unlock,
    shim_check_reserved, shim_file_control, shim_sector_size, shim_device_characteristics,
    shim_shm_map, shim_shm_lock, shim_shm_barrier, shim_shm_unmap, shim_fetch, shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
    (void)vfs;
    ShimFile *s = (ShimFile *)f;
    s->real = (sqlite3_file *)(s + 1);
    s->tracked = NULL;
    pthread_mutex_lock(&lock);
    int track = name && prefix[0] && strncmp(name, prefix, strlen(prefix)) == 0;
    int existed = track && access(name, F_OK) == 0;
    pthread_mutex_unlock(&lock);
    int rc = unix_vfs->xOpen(unix_vfs, name, s->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        f->pMethods = NULL;
        return rc;
    }
    f->pMethods = &shim_methods;
    if (!track) return SQLITE_OK; // every method passes straight through

    pthread_mutex_lock(&lock);
    Tracked *t = find(name, 0);
    if (!t) {
        t = find(name, 1);
        // A file that was there before it was first opened is on disk as it is.
        if (t && existed) s->real->pMethods->xFileSize(s->real, &t->synced_size);
    }
    s->tracked = t;
    pthread_mutex_unlock(&lock);
    return t ? SQLITE_OK : SQLITE_CANTOPEN;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    (void)vfs;
    pthread_mutex_lock(&lock);
    Tracked *t = name ? find(name, 0) : NULL;
    int rc = SQLITE_OK;
    if (t) {
        if (power_on()) {
            forget(t);
            t->path[0] = 0;
        } else {
            rc = SQLITE_IOERR_DELETE;
        }
    }
    pthread_mutex_unlock(&lock);
    if (rc != SQLITE_OK) return rc;
    return unix_vfs->xDelete(unix_vfs, name, sync_dir);
}
static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return unix_vfs->xAccess(unix_vfs, name, flags, out);
}
static int shim_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
    (void)vfs;
    return unix_vfs->xFullPathname(unix_vfs, name, n, out);
}
static void *shim_dl_open(sqlite3_vfs *vfs, const char *name) { (void)vfs; return unix_vfs->xDlOpen(unix_vfs, name); }
static void shim_dl_error(sqlite3_vfs *vfs, int n, char *out) { (void)vfs; unix_vfs->xDlError(unix_vfs, n, out); }
static void (*shim_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void) { (void)vfs; return unix_vfs->xDlSym(unix_vfs, h, sym); }
static void shim_dl_close(sqlite3_vfs *vfs, void *h) { (void)vfs; unix_vfs->xDlClose(unix_vfs, h); }
static int shim_randomness(sqlite3_vfs *vfs, int n, char *out) { (void)vfs; return unix_vfs->xRandomness(unix_vfs, n, out); }
static int shim_sleep(sqlite3_vfs *vfs, int us) { (void)vfs; return unix_vfs->xSleep(unix_vfs, us); }
static int shim_current_time(sqlite3_vfs *vfs, double *out) { (void)vfs; return unix_vfs->xCurrentTime(unix_vfs, out); }
static int shim_last_error(sqlite3_vfs *vfs, int n, char *out) { (void)vfs; return unix_vfs->xGetLastError(unix_vfs, n, out); }
static int shim_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    return unix_vfs->xCurrentTimeInt64(unix_vfs, out);
}

int powercut_install(const char *path_prefix) {
    pthread_mutex_lock(&lock);
    if (!unix_vfs) {
        unix_vfs = sqlite3_vfs_find("unix");
        if (!unix_vfs) {
            pthread_mutex_unlock(&lock);
            return SQLITE_ERROR;
        }
        shim_vfs = (sqlite3_vfs){
            2, (int)sizeof(ShimFile) + unix_vfs->szOsFile, unix_vfs->mxPathname, NULL, "powercut", NULL,
            shim_open, shim_delete, shim_access, shim_full_pathname, shim_dl_open, shim_dl_error, shim_dl_sym,
            shim_dl_close, shim_randomness, shim_sleep, shim_current_time, shim_last_error, shim_current_time_int64,
        };
    }
    strncpy(prefix, path_prefix, sizeof(prefix) - 1);
    pthread_mutex_unlock(&lock);
    return sqlite3_vfs_register(&shim_vfs, 1);
}

void powercut_uninstall(void) {
    pthread_mutex_lock(&lock);
    prefix[0] = 0;
    for (int i = 0; i < MAX_TRACKED; i++) {
        forget(&tracked[i]);
        tracked[i].path[0] = 0;
    }
    pthread_mutex_unlock(&lock);
    if (unix_vfs) sqlite3_vfs_register(unix_vfs, 1);
}

void powercut_arm(long long at) {
    pthread_mutex_lock(&lock);
    operations = 0;
    cut_at = at;
    is_cut = 0;
    for (int i = 0; i < MAX_TRACKED; i++) {
        forget(&tracked[i]);
        tracked[i].path[0] = 0;
    }
    pthread_mutex_unlock(&lock);
}

long long powercut_operations(void) {
    pthread_mutex_lock(&lock);
    long long n = operations;
    pthread_mutex_unlock(&lock);
    return n;
}

int powercut_is_cut(void) {
    pthread_mutex_lock(&lock);
    int cut = is_cut;
    pthread_mutex_unlock(&lock);
    return cut;
}

int powercut_apply(int tear_last_write) {
    int result = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_TRACKED; i++) {
        Tracked *t = &tracked[i];
        if (!t->path[0]) continue;
        size_t length = strlen(t->path);
        if (length > 4 && strcmp(t->path + length - 4, "-shm") == 0) {
            unlink(t->path);
        } else {
            int fd = open(t->path, O_WRONLY);
            if (fd >= 0) {
                // Newest first, so the oldest pre-image of a region is what remains.
                for (int k = t->count - 1; k >= 0; k--) {
                    PreImage *p = &t->images[k];
                    int restore = p->length;
                    // A write can be torn (sectors of it reached the disk, others not); a truncate
                    // is either lost or not, so it is undone whole.
                    if (tear_last_write && k == t->count - 1 && !p->truncated) restore = p->length / 2;
                    if (pwrite(fd, p->bytes, (size_t)restore, p->offset) != restore) result = -1;
                }
                if (ftruncate(fd, t->synced_size) != 0) result = -1;
                close(fd);
            } else if (errno != ENOENT) {
                result = -1;
            }
        }
        forget(t);
        t->path[0] = 0;
    }
    is_cut = 0;
    cut_at = 0;
    pthread_mutex_unlock(&lock);
    return result;
}
