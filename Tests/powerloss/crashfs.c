/*
 * crashfs: an in-memory FUSE file system that simulates power loss.
 *
 * Every inode has a *current* state, which is what processes see, and a
 * *durable* state, which is what would be on the disk:
 *
 *   - a regular file's bytes and size: fsync/fdatasync make the current
 *     contents durable;
 *   - a directory's entries (name -> inode): fsync of the directory (which
 *     reaches FUSE as fsyncdir) makes the current entries durable. Creating,
 *     linking, renaming or unlinking a name changes only the current entries
 *     of the directories involved.
 *
 * Writing "crash" to the hidden control file /.crashfs of the mount resets
 * every inode to its durable state and drops the inodes that are not
 * reachable from the root through durable entries: a file created or renamed
 * since its directory was last fsynced vanishes (or is back under its old
 * name), an unlink not followed by an fsync of the directory is undone, and
 * unsynced file data is lost. With -o torn, a crash instead keeps, for each
 * file, a random (seeded) prefix of the writes and truncations made since the
 * file was last fsynced, the last of them possibly cut at a 512-byte sector
 * boundary: "some of the unsynced data made it". Directories are always
 * all-or-nothing. Metadata other than names and sizes (modes, owners, times)
 * is not rolled back.
 *
 * The model is stricter than ext4 (whose fsync of a new file also commits its
 * directory entry in the journal) and is the POSIX reading: a name is durable
 * only once its directory is fsynced.
 *
 * Control file (not listed by readdir, opened by name):
 *   write "crash"           drop everything unsynced (with -o torn: torn writes,
 *   write "crash SEED"      seeded by SEED, default 1)
 *   write "sync"            make everything durable (like sync(2))
 *   write "freeze N"        let N more fsync/fsyncdir calls take effect, then
 *                           freeze the durable state: later ones succeed and
 *                           change nothing, later writes are not logged for
 *                           tearing, so a crash afterwards is a crash at the
 *                           moment of the freeze ("freeze 0": now); a crash
 *                           or "sync" ends the freeze
 *   read                    counters: fsync, fsyncdir, crashes, bytes, ...
 *
 * Options (besides the usual FUSE ones; run single-threaded with -s):
 *   -o size=BYTES   total size of the files' current contents; writes past it
 *                   fail with ENOSPC (0, the default, means unbounded)
 *   -o torn         keep a log of unsynced writes and tear them at a crash
 *
 * Locks (flock, fcntl) are not implemented here, so the kernel handles them
 * locally; inotify sees changes made through the mount. Not implemented:
 * symlinks, xattrs, mmap-specific behaviour, readdirplus.
 *
 * Build: cc -O2 -Wall -o crashfs crashfs.c $(pkg-config --cflags --libs fuse3)
 * Run:   crashfs -f -s [-o size=N,torn] MOUNTPOINT   (prints "ready" once mounted)
 */
#define FUSE_USE_VERSION 34
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define CTL_INO 2
#define CTL_NAME ".crashfs"

/* ------------------------------------------------------------------ pages */

struct page {
    int refs;
    unsigned char d[PAGE];
};

static void page_unref(struct page *p) {
    if (p && --p->refs == 0) free(p);
}

static struct page *page_ref(struct page *p) {
    if (p) p->refs++;
    return p;
}

/* File contents: an array of shared, copy-on-write pages. Bytes past size
 * inside the last page are always zero; a NULL page reads as zeros. */
struct fdata {
    struct page **pages;
    size_t npages; /* slots in use: ceil(size / PAGE) */
    size_t cap;
    off_t size;
};

static size_t pages_for(off_t size) { return (size_t)((size + PAGE - 1) / PAGE); }

static void fdata_slots(struct fdata *f, size_t n) {
    if (n > f->cap) {
        size_t cap = f->cap ? f->cap : 16;
        while (cap < n) cap *= 2;
        f->pages = realloc(f->pages, cap * sizeof *f->pages);
        if (!f->pages) abort();
        memset(f->pages + f->cap, 0, (cap - f->cap) * sizeof *f->pages);
        f->cap = cap;
    }
    for (size_t i = n; i < f->npages; i++) {
        page_unref(f->pages[i]);
        f->pages[i] = NULL;
    }
    f->npages = n;
}

static void fdata_free(struct fdata *f) {
    fdata_slots(f, 0);
    free(f->pages);
    memset(f, 0, sizeof *f);
}

/* dst := src, sharing pages. */
static void fdata_assign(struct fdata *dst, const struct fdata *src) {
    fdata_slots(dst, 0);
    fdata_slots(dst, src->npages);
    for (size_t i = 0; i < src->npages; i++) dst->pages[i] = page_ref(src->pages[i]);
    dst->size = src->size;
}

/* A page of f we may modify (allocated, not shared). */
static struct page *fdata_own(struct fdata *f, size_t i) {
    struct page *p = f->pages[i];
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p) abort();
        p->refs = 1;
        f->pages[i] = p;
    } else if (p->refs > 1) {
        struct page *c = malloc(sizeof *c);
        if (!c) abort();
        memcpy(c->d, p->d, PAGE);
        c->refs = 1;
        page_unref(p);
        f->pages[i] = c;
    }
    return f->pages[i];
}

static void fdata_truncate(struct fdata *f, off_t size) {
    if (size < f->size) {
        size_t n = pages_for(size);
        fdata_slots(f, n);
        size_t tail = (size_t)(size % PAGE);
        if (tail && f->pages[n - 1]) memset(fdata_own(f, n - 1)->d + tail, 0, PAGE - tail);
    } else {
        fdata_slots(f, pages_for(size));
    }
    f->size = size;
}

static void fdata_write(struct fdata *f, const char *buf, size_t len, off_t off) {
    if (len == 0) return;
    off_t end = off + (off_t)len;
    if (end > f->size) {
        fdata_slots(f, pages_for(end));
        f->size = end;
    }
    while (len > 0) {
        size_t i = (size_t)(off / PAGE), at = (size_t)(off % PAGE);
        size_t n = PAGE - at < len ? PAGE - at : len;
        memcpy(fdata_own(f, i)->d + at, buf, n);
        buf += n;
        off += (off_t)n;
        len -= n;
    }
}

static size_t fdata_read(const struct fdata *f, char *buf, size_t len, off_t off) {
    if (off >= f->size) return 0;
    if ((off_t)len > f->size - off) len = (size_t)(f->size - off);
    size_t done = 0;
    while (done < len) {
        size_t i = (size_t)(off / PAGE), at = (size_t)(off % PAGE);
        size_t n = PAGE - at < len - done ? PAGE - at : len - done;
        if (f->pages[i]) memcpy(buf + done, f->pages[i]->d + at, n);
        else memset(buf + done, 0, n);
        done += n;
        off += (off_t)n;
    }
    return len;
}

/* ---------------------------------------------------------- directories */

struct dentry {
    char *name;
    uint64_t ino;
    off_t cookie; /* readdir position: increases in insertion order */
};

struct dir {
    struct dentry *e;
    size_t n, cap;
};

static void dir_clear(struct dir *d) {
    for (size_t i = 0; i < d->n; i++) free(d->e[i].name);
    d->n = 0;
}

static void dir_free(struct dir *d) {
    dir_clear(d);
    free(d->e);
    memset(d, 0, sizeof *d);
}

static void dir_copy(struct dir *dst, const struct dir *src) {
    dir_clear(dst);
    if (src->n > dst->cap) {
        dst->cap = src->n;
        dst->e = realloc(dst->e, dst->cap * sizeof *dst->e);
        if (!dst->e) abort();
    }
    for (size_t i = 0; i < src->n; i++) {
        dst->e[i] = src->e[i];
        dst->e[i].name = strdup(src->e[i].name);
    }
    dst->n = src->n;
}

static struct dentry *dir_find(struct dir *d, const char *name) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->e[i].name, name) == 0) return &d->e[i];
    return NULL;
}

static void dir_add(struct dir *d, const char *name, uint64_t ino, off_t cookie) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->e = realloc(d->e, d->cap * sizeof *d->e);
        if (!d->e) abort();
    }
    d->e[d->n++] = (struct dentry){strdup(name), ino, cookie};
}

static void dir_remove(struct dir *d, struct dentry *e) {
    size_t i = (size_t)(e - d->e);
    free(e->name);
    memmove(d->e + i, d->e + i + 1, (d->n - i - 1) * sizeof *d->e);
    d->n--;
}

/* --------------------------------------------------------------- inodes */

enum op_kind { OP_WRITE, OP_TRUNCATE };

struct op {
    enum op_kind kind;
    off_t off; /* write: position; truncate: new size */
    size_t len;
    char *data;
};

struct inode {
    uint64_t ino;
    int dead;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    struct timespec atime, mtime, ctime;
    unsigned nlink;   /* current entries naming it */
    unsigned opens;
    /* regular files */
    struct fdata cur, dur;
    struct op *ops;   /* -o torn: writes and truncations since the last fsync */
    size_t nops, capops;
    /* directories */
    struct dir ents, dents; /* current, durable */
    off_t next_cookie;
    uint64_t parent;  /* current parent (directories) */
    int mark;
};

static struct inode **inodes; /* index = ino; 0 unused, 2 is the control file */
static size_t ninodes, capinodes;

static off_t size_limit;   /* -o size= */
static int torn_mode;      /* -o torn */
static off_t used_bytes;   /* sum of current sizes of live files */
static unsigned long n_fsync, n_fsyncdir, n_crash, n_write, n_enospc;
static long freeze_left = -1;  /* durability calls until the freeze; -1: none pending */
static int frozen;             /* durable state frozen until the next crash or sync */

/* Whether a durability call (fsync, fsyncdir) takes effect; counts down a pending freeze. */
static int durability_allowed(void) {
    if (frozen) return 0;
    if (freeze_left > 0 && --freeze_left == 0) { frozen = 1; freeze_left = -1; return 1; }
    return 1;
}


static void now(struct timespec *t) { clock_gettime(CLOCK_REALTIME, t); }

static struct inode *inode_new(mode_t mode, const struct fuse_ctx *ctx) {
    if (ninodes == capinodes) {
        capinodes = capinodes ? capinodes * 2 : 1024;
        inodes = realloc(inodes, capinodes * sizeof *inodes);
        if (!inodes) abort();
    }
    struct inode *in = calloc(1, sizeof *in);
    if (!in) abort();
    in->ino = ninodes;
    inodes[ninodes++] = in;
    in->mode = mode;
    in->uid = ctx ? ctx->uid : getuid();
    in->gid = ctx ? ctx->gid : getgid();
    now(&in->atime);
    in->mtime = in->ctime = in->atime;
    in->next_cookie = 3;
    return in;
}

static struct inode *get(fuse_ino_t ino) {
    if (ino >= ninodes || ino == CTL_INO || ino == 0) return NULL;
    struct inode *in = inodes[ino];
    return in && !in->dead ? in : NULL;
}

static void ops_clear(struct inode *in) {
    for (size_t i = 0; i < in->nops; i++) free(in->ops[i].data);
    in->nops = 0;
}

static void ops_push(struct inode *in, enum op_kind kind, off_t off, const char *data, size_t len) {
    if (!torn_mode || frozen) return;
    if (in->nops == in->capops) {
        in->capops = in->capops ? in->capops * 2 : 16;
        in->ops = realloc(in->ops, in->capops * sizeof *in->ops);
        if (!in->ops) abort();
    }
    struct op *o = &in->ops[in->nops++];
    o->kind = kind;
    o->off = off;
    o->len = len;
    o->data = NULL;
    if (data) {
        o->data = malloc(len ? len : 1);
        if (!o->data) abort();
        memcpy(o->data, data, len);
    }
}

/* Releases the memory of a file no one can reach any more, now or after a crash. */
static void maybe_release(struct inode *in) {
    (void)in; /* kept simple: contents live until the file system exits or a crash drops them */
}

static void fill_attr(const struct inode *in, struct stat *st) {
    memset(st, 0, sizeof *st);
    st->st_ino = in->ino;
    st->st_mode = in->mode;
    st->st_nlink = S_ISDIR(in->mode) ? 2 : in->nlink;
    st->st_uid = in->uid;
    st->st_gid = in->gid;
    st->st_size = S_ISDIR(in->mode) ? 4096 : in->cur.size;
    st->st_blksize = PAGE;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = in->atime;
    st->st_mtim = in->mtime;
    st->st_ctim = in->ctime;
}

static void ctl_attr(struct stat *st) {
    memset(st, 0, sizeof *st);
    st->st_ino = CTL_INO;
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
}

static void reply_entry(fuse_req_t req, struct inode *in) {
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = in->ino;
    e.generation = 1;
    fill_attr(in, &e.attr);
    e.attr_timeout = 0;
    e.entry_timeout = 0;
    fuse_reply_entry(req, &e);
}

static void touch_dir(struct inode *d) {
    now(&d->mtime);
    d->ctime = d->mtime;
}

/* ---------------------------------------------------------------- crash */

static uint64_t rng_state;

static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void mark_reachable(struct inode *in) {
    if (in->mark) {
        in->nlink++;
        return;
    }
    in->mark = 1;
    in->nlink = 1;
    if (S_ISDIR(in->mode))
        for (size_t i = 0; i < in->dents.n; i++) {
            struct inode *c = inodes[in->dents.e[i].ino];
            if (S_ISDIR(c->mode) && !c->mark) c->parent = in->ino;
            mark_reachable(c);
        }
}

/* With -o torn: the file after a random prefix of its unsynced operations. */
static void tear(struct inode *in) {
    size_t keep = (size_t)(rng() % (in->nops + 1));
    for (size_t i = 0; i < keep && i < in->nops; i++) {
        struct op *o = &in->ops[i];
        if (o->kind == OP_TRUNCATE) fdata_truncate(&in->cur, o->off);
        else fdata_write(&in->cur, o->data, o->len, o->off);
    }
    /* the next write may have been cut at a sector boundary */
    if (keep < in->nops && in->ops[keep].kind == OP_WRITE && in->ops[keep].len > 512) {
        struct op *o = &in->ops[keep];
        size_t sectors = o->len / 512;
        size_t part = (size_t)(rng() % (sectors + 1)) * 512;
        fdata_write(&in->cur, o->data, part, o->off);
    }
}

static void do_crash(uint64_t seed) {
    rng_state = seed;
    for (size_t i = 1; i < ninodes; i++)
        if (inodes[i]) inodes[i]->mark = 0;
    inodes[FUSE_ROOT_ID]->parent = FUSE_ROOT_ID;
    mark_reachable(inodes[FUSE_ROOT_ID]);
    used_bytes = 0;
    for (size_t i = 1; i < ninodes; i++) {
        struct inode *in = inodes[i];
        if (!in || in->dead) continue;
        if (!in->mark) {
            in->dead = 1;
            in->nlink = 0;
            fdata_free(&in->cur);
            fdata_free(&in->dur);
            dir_free(&in->ents);
            dir_free(&in->dents);
            ops_clear(in);
            continue;
        }
        if (S_ISDIR(in->mode)) {
            dir_copy(&in->ents, &in->dents);
        } else {
            fdata_assign(&in->cur, &in->dur);
            if (torn_mode && in->nops) {
                tear(in);
                fdata_assign(&in->dur, &in->cur);
            }
            ops_clear(in);
            used_bytes += in->cur.size;
        }
        in->opens = 0;
    }
    frozen = 0;
    freeze_left = -1;
    n_crash++;
}

static void sync_file(struct inode *in) {
    fdata_assign(&in->dur, &in->cur);
    ops_clear(in);
}

static void do_sync_all(void) {
    for (size_t i = 1; i < ninodes; i++) {
        struct inode *in = inodes[i];
        if (!in || in->dead) continue;
        if (S_ISDIR(in->mode)) dir_copy(&in->dents, &in->ents);
        else sync_file(in);
    }
}

/* ----------------------------------------------------------- operations */

static void cfs_init(void *userdata, struct fuse_conn_info *conn) {
    (void)userdata;
    /* no writeback cache: every write reaches us at once */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

static void cfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    struct inode *d = get(parent);
    if (!d || !S_ISDIR(d->mode)) { fuse_reply_err(req, d ? ENOTDIR : ENOENT); return; }
    if (parent == FUSE_ROOT_ID && strcmp(name, CTL_NAME) == 0) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.ino = CTL_INO;
        e.generation = 1;
        ctl_attr(&e.attr);
        fuse_reply_entry(req, &e);
        return;
    }
    struct dentry *de = dir_find(&d->ents, name);
    if (!de) { fuse_reply_err(req, ENOENT); return; }
    reply_entry(req, inodes[de->ino]);
}

static void cfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    struct stat st;
    if (ino == CTL_INO) { ctl_attr(&st); fuse_reply_attr(req, &st, 0); return; }
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    fill_attr(in, &st);
    fuse_reply_attr(req, &st, 0);
}

static int resize(struct inode *in, off_t size) {
    if (size > in->cur.size && size_limit && used_bytes + (size - in->cur.size) > size_limit) {
        n_enospc++;
        return ENOSPC;
    }
    used_bytes += size - in->cur.size;
    fdata_truncate(&in->cur, size);
    ops_push(in, OP_TRUNCATE, size, NULL, 0);
    return 0;
}

static void cfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                        struct fuse_file_info *fi) {
    (void)fi;
    struct stat st;
    if (ino == CTL_INO) { ctl_attr(&st); fuse_reply_attr(req, &st, 0); return; }
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (S_ISDIR(in->mode)) { fuse_reply_err(req, EISDIR); return; }
        int err = resize(in, attr->st_size);
        if (err) { fuse_reply_err(req, err); return; }
        now(&in->mtime);
        in->ctime = in->mtime;
    }
    if (to_set & FUSE_SET_ATTR_MODE) in->mode = (in->mode & S_IFMT) | (attr->st_mode & 07777);
    if (to_set & FUSE_SET_ATTR_UID) in->uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) in->gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_ATIME) in->atime = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME) in->mtime = attr->st_mtim;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) now(&in->atime);
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) now(&in->mtime);
    if (to_set & FUSE_SET_ATTR_CTIME) in->ctime = attr->st_ctim;
    else now(&in->ctime);
    fill_attr(in, &st);
    fuse_reply_attr(req, &st, 0);
}

/* Adds a new inode named NAME in directory PARENT, or fails with an errno. */
static int make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct inode **out) {
    struct inode *d = get(parent);
    if (!d) return ESTALE;
    if (!S_ISDIR(d->mode)) return ENOTDIR;
    if (strlen(name) > 255) return ENAMETOOLONG;
    if (dir_find(&d->ents, name) || (parent == FUSE_ROOT_ID && strcmp(name, CTL_NAME) == 0)) return EEXIST;
    struct inode *in = inode_new(mode, fuse_req_ctx(req));
    dir_add(&d->ents, name, in->ino, d->next_cookie++);
    in->nlink = 1;
    if (S_ISDIR(mode)) in->parent = parent;
    touch_dir(d);
    *out = in;
    return 0;
}

static void cfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
    (void)rdev;
    if (!S_ISREG(mode)) { fuse_reply_err(req, EPERM); return; }
    struct inode *in;
    int err = make(req, parent, name, mode, &in);
    if (err) fuse_reply_err(req, err);
    else reply_entry(req, in);
}

static void cfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
    struct inode *in;
    int err = make(req, parent, name, S_IFDIR | (mode & 07777), &in);
    if (err) fuse_reply_err(req, err);
    else reply_entry(req, in);
}

static void cfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       struct fuse_file_info *fi) {
    struct inode *d = get(parent);
    struct dentry *de = d && S_ISDIR(d->mode) ? dir_find(&d->ents, name) : NULL;
    struct inode *in;
    if (de) {
        if (fi->flags & O_EXCL) { fuse_reply_err(req, EEXIST); return; }
        in = inodes[de->ino];
        if (S_ISDIR(in->mode)) { fuse_reply_err(req, EISDIR); return; }
        if (fi->flags & O_TRUNC) resize(in, 0);
    } else {
        int err = make(req, parent, name, S_IFREG | (mode & 07777), &in);
        if (err) { fuse_reply_err(req, err); return; }
    }
    in->opens++;
    fi->direct_io = 0;
    fi->keep_cache = 0;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = in->ino;
    e.generation = 1;
    fill_attr(in, &e.attr);
    if (fuse_reply_create(req, &e, fi) != 0) in->opens--;
}

static void cfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    if (ino == CTL_INO) {
        fi->direct_io = 1;
        fuse_reply_open(req, fi);
        return;
    }
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    if (S_ISDIR(in->mode)) { fuse_reply_err(req, EISDIR); return; }
    if (fi->flags & O_TRUNC) {
        int err = resize(in, 0);
        if (err) { fuse_reply_err(req, err); return; }
    }
    in->opens++;
    fi->direct_io = 0;
    fi->keep_cache = 0;
    if (fuse_reply_open(req, fi) != 0) in->opens--;
}

static void cfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    struct inode *in = get(ino);
    if (in && in->opens) in->opens--;
    fuse_reply_err(req, 0);
}

static void cfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)ino; (void)fi;
    fuse_reply_err(req, 0);
}

static char ctl_text[512];

static void cfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)fi;
    if (ino == CTL_INO) {
        int n = snprintf(ctl_text, sizeof ctl_text,
                         "fsync %lu\nfsyncdir %lu\ncrashes %lu\nwrites %lu\nenospc %lu\nbytes %lld\ninodes %zu\ntorn %d\n"
                         "frozen %d\n",
                         n_fsync, n_fsyncdir, n_crash, n_write, n_enospc, (long long)used_bytes,
                         ninodes, torn_mode, frozen);
        if (off >= n) { fuse_reply_buf(req, NULL, 0); return; }
        size_t len = (size_t)(n - off) < size ? (size_t)(n - off) : size;
        fuse_reply_buf(req, ctl_text + off, len);
        return;
    }
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    char *buf = malloc(size ? size : 1);
    if (!buf) { fuse_reply_err(req, ENOMEM); return; }
    size_t n = fdata_read(&in->cur, buf, size, off);
    fuse_reply_buf(req, buf, n);
    free(buf);
}

static void ctl_command(fuse_req_t req, const char *buf, size_t size) {
    char cmd[128];
    size_t n = size < sizeof cmd - 1 ? size : sizeof cmd - 1;
    memcpy(cmd, buf, n);
    cmd[n] = 0;
    unsigned long long seed = 1;
    if (strncmp(cmd, "crash", 5) == 0) {
        sscanf(cmd + 5, "%llu", &seed);
        do_crash(seed);
        fprintf(stderr, "crashfs: crash (seed %llu, %s)\n", seed, torn_mode ? "torn" : "drop unsynced");
    } else if (strncmp(cmd, "sync", 4) == 0) {
        frozen = 0;
        freeze_left = -1;
        do_sync_all();
    } else if (strncmp(cmd, "freeze", 6) == 0) {
        long n = 0;
        sscanf(cmd + 6, "%ld", &n);
        if (n <= 0) { frozen = 1; freeze_left = -1; }
        else { frozen = 0; freeze_left = n; }
    } else {
        fuse_reply_err(req, EINVAL);
        return;
    }
    fuse_reply_write(req, size);
}

static void cfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi) {
    (void)fi;
    if (ino == CTL_INO) { ctl_command(req, buf, size); return; }
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    off_t end = off + (off_t)size;
    if (end > in->cur.size && size_limit && used_bytes + (end - in->cur.size) > size_limit) {
        off_t room = size_limit - used_bytes + in->cur.size - off;
        n_enospc++;
        if (room <= 0) { fuse_reply_err(req, ENOSPC); return; }
        size = (size_t)room;
        end = off + (off_t)size;
    }
    if (end > in->cur.size) used_bytes += end - in->cur.size;
    fdata_write(&in->cur, buf, size, off);
    ops_push(in, OP_WRITE, off, buf, size);
    now(&in->mtime);
    in->ctime = in->mtime;
    n_write++;
    fuse_reply_write(req, size);
}

static void cfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                          struct fuse_file_info *fi) {
    (void)fi;
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE) { fuse_reply_err(req, EOPNOTSUPP); return; }
    if (mode == 0 && off + len > in->cur.size) {
        int err = resize(in, off + len);
        if (err) { fuse_reply_err(req, err); return; }
    }
    fuse_reply_err(req, 0);
}

static void cfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
    (void)datasync; (void)fi;
    if (ino == CTL_INO) { fuse_reply_err(req, 0); return; }
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    if (durability_allowed()) sync_file(in);
    n_fsync++;
    fuse_reply_err(req, 0);
}

static void cfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
    (void)datasync; (void)fi;
    struct inode *in = get(ino);
    if (!in) { fuse_reply_err(req, ESTALE); return; }
    if (durability_allowed()) dir_copy(&in->dents, &in->ents);
    n_fsyncdir++;
    fuse_reply_err(req, 0);
}

static void cfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)fi;
    struct inode *d = get(ino);
    if (!d) { fuse_reply_err(req, ESTALE); return; }
    if (!S_ISDIR(d->mode)) { fuse_reply_err(req, ENOTDIR); return; }
    char *buf = malloc(size);
    if (!buf) { fuse_reply_err(req, ENOMEM); return; }
    size_t used = 0;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFDIR;
    if (off < 1) {
        st.st_ino = d->ino;
        size_t n = fuse_add_direntry(req, buf + used, size - used, ".", &st, 1);
        if (n > size - used) goto done;
        used += n;
    }
    if (off < 2) {
        st.st_ino = d->parent ? d->parent : d->ino;
        size_t n = fuse_add_direntry(req, buf + used, size - used, "..", &st, 2);
        if (n > size - used) goto done;
        used += n;
    }
    for (size_t i = 0; i < d->ents.n; i++) {
        struct dentry *e = &d->ents.e[i];
        if (e->cookie <= off) continue;
        st.st_ino = e->ino;
        st.st_mode = inodes[e->ino]->mode;
        size_t n = fuse_add_direntry(req, buf + used, size - used, e->name, &st, e->cookie);
        if (n > size - used) break;
        used += n;
    }
done:
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void unlink_entry(struct inode *d, struct dentry *de) {
    struct inode *in = inodes[de->ino];
    if (in->nlink) in->nlink--;
    if (!S_ISDIR(in->mode) && in->nlink == 0) used_bytes -= in->cur.size, maybe_release(in);
    dir_remove(&d->ents, de);
    touch_dir(d);
}

static void cfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
    struct inode *d = get(parent);
    if (!d) { fuse_reply_err(req, ESTALE); return; }
    struct dentry *de = dir_find(&d->ents, name);
    if (!de) { fuse_reply_err(req, ENOENT); return; }
    if (S_ISDIR(inodes[de->ino]->mode)) { fuse_reply_err(req, EISDIR); return; }
    now(&inodes[de->ino]->ctime);
    unlink_entry(d, de);
    fuse_reply_err(req, 0);
}

static void cfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
    struct inode *d = get(parent);
    if (!d) { fuse_reply_err(req, ESTALE); return; }
    struct dentry *de = dir_find(&d->ents, name);
    if (!de) { fuse_reply_err(req, ENOENT); return; }
    struct inode *c = inodes[de->ino];
    if (!S_ISDIR(c->mode)) { fuse_reply_err(req, ENOTDIR); return; }
    if (c->ents.n) { fuse_reply_err(req, ENOTEMPTY); return; }
    unlink_entry(d, de);
    fuse_reply_err(req, 0);
}

static void cfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
    struct inode *in = get(ino), *d = get(newparent);
    if (!in || !d) { fuse_reply_err(req, ESTALE); return; }
    if (S_ISDIR(in->mode)) { fuse_reply_err(req, EPERM); return; }
    if (dir_find(&d->ents, newname)) { fuse_reply_err(req, EEXIST); return; }
    dir_add(&d->ents, newname, in->ino, d->next_cookie++);
    if (in->nlink == 0) used_bytes += in->cur.size;
    in->nlink++;
    now(&in->ctime);
    touch_dir(d);
    reply_entry(req, in);
}

static void cfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                       const char *newname, unsigned int flags) {
    struct inode *sd = get(parent), *dd = get(newparent);
    if (!sd || !dd) { fuse_reply_err(req, ESTALE); return; }
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) { fuse_reply_err(req, EINVAL); return; }
    struct dentry *se = dir_find(&sd->ents, name);
    if (!se) { fuse_reply_err(req, ENOENT); return; }
    struct inode *src = inodes[se->ino];
    struct dentry *de = dir_find(&dd->ents, newname);
    if (flags & RENAME_EXCHANGE) {
        if (!de) { fuse_reply_err(req, ENOENT); return; }
        struct inode *dst = inodes[de->ino];
        uint64_t a = se->ino, b = de->ino;
        /* new cookies: both names are new entries of their directories */
        dir_remove(&sd->ents, se);
        dir_add(&sd->ents, name, b, sd->next_cookie++);
        de = dir_find(&dd->ents, newname);
        dir_remove(&dd->ents, de);
        dir_add(&dd->ents, newname, a, dd->next_cookie++);
        if (S_ISDIR(src->mode)) src->parent = newparent;
        if (S_ISDIR(dst->mode)) dst->parent = parent;
        touch_dir(sd);
        touch_dir(dd);
        fuse_reply_err(req, 0);
        return;
    }
    if (de) {
        if (de->ino == se->ino) { fuse_reply_err(req, 0); return; } /* same file: nothing to do */
        if (flags & RENAME_NOREPLACE) { fuse_reply_err(req, EEXIST); return; }
        struct inode *dst = inodes[de->ino];
        if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode)) { fuse_reply_err(req, ENOTDIR); return; }
        if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode)) { fuse_reply_err(req, EISDIR); return; }
        if (S_ISDIR(dst->mode) && dst->ents.n) { fuse_reply_err(req, ENOTEMPTY); return; }
        now(&dst->ctime);
        unlink_entry(dd, de);
        se = dir_find(&sd->ents, name); /* the array may have moved */
    }
    uint64_t ino = se->ino;
    dir_remove(&sd->ents, se);
    dir_add(&dd->ents, newname, ino, dd->next_cookie++);
    if (S_ISDIR(src->mode)) src->parent = newparent;
    now(&src->ctime);
    touch_dir(sd);
    touch_dir(dd);
    fuse_reply_err(req, 0);
}

static void cfs_statfs(fuse_req_t req, fuse_ino_t ino) {
    (void)ino;
    struct statvfs s;
    memset(&s, 0, sizeof s);
    s.f_bsize = PAGE;
    s.f_frsize = PAGE;
    fsblkcnt_t total = size_limit ? (fsblkcnt_t)(size_limit / PAGE) : (fsblkcnt_t)1 << 24;
    fsblkcnt_t used = (fsblkcnt_t)((used_bytes + PAGE - 1) / PAGE);
    s.f_blocks = total;
    s.f_bfree = s.f_bavail = used < total ? total - used : 0;
    s.f_files = 1 << 20;
    s.f_ffree = s.f_favail = (1 << 20) - (ninodes < (1 << 20) ? ninodes : (1 << 20));
    s.f_namemax = 255;
    fuse_reply_statfs(req, &s);
}

static const struct fuse_lowlevel_ops cfs_ops = {
    .init = cfs_init,
    .lookup = cfs_lookup,
    .getattr = cfs_getattr,
    .setattr = cfs_setattr,
    .mknod = cfs_mknod,
    .mkdir = cfs_mkdir,
    .unlink = cfs_unlink,
    .rmdir = cfs_rmdir,
    .rename = cfs_rename,
    .link = cfs_link,
    .open = cfs_open,
    .read = cfs_read,
    .write = cfs_write,
    .flush = cfs_flush,
    .release = cfs_release,
    .fsync = cfs_fsync,
    .readdir = cfs_readdir,
    .fsyncdir = cfs_fsyncdir,
    .statfs = cfs_statfs,
    .create = cfs_create,
    .fallocate = cfs_fallocate,
};

/* ----------------------------------------------------------------- main */

struct cfs_opts {
    char *size;
    int torn;
};

static const struct fuse_opt cfs_optspec[] = {
    {"size=%s", offsetof(struct cfs_opts, size), 0},
    {"torn", offsetof(struct cfs_opts, torn), 1},
    FUSE_OPT_END,
};

int main(int argc, char *argv[]) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts opts;
    struct cfs_opts copts = {0};
    int ret = 1;

    if (fuse_parse_cmdline(&args, &opts) != 0) return 1;
    if (opts.show_help || !opts.mountpoint) {
        printf("usage: %s [-f] [-s] [-o size=BYTES,torn] MOUNTPOINT\n", argv[0]);
        fuse_cmdline_help();
        fuse_lowlevel_help();
        return opts.show_help ? 0 : 1;
    }
    if (fuse_opt_parse(&args, &copts, cfs_optspec, NULL) == -1) return 1;
    if (copts.size) size_limit = strtoll(copts.size, NULL, 0);
    torn_mode = copts.torn;

    inode_new(0, NULL)->dead = 1;                        /* 0: no inode */
    struct inode *root = inode_new(S_IFDIR | 0755, NULL); /* 1: FUSE_ROOT_ID */
    root->nlink = 1;
    root->parent = FUSE_ROOT_ID;
    inode_new(S_IFREG | 0600, NULL)->dead = 1;           /* 2: the control file's number */

    struct fuse_session *se = fuse_session_new(&args, &cfs_ops, sizeof cfs_ops, NULL);
    if (!se) goto out;
    if (fuse_set_signal_handlers(se) != 0) goto out_session;
    if (fuse_session_mount(se, opts.mountpoint) != 0) goto out_signals;
    printf("ready\n");
    fflush(stdout);
    fuse_daemonize(opts.foreground);
    ret = fuse_session_loop(se); /* single-threaded: no locking needed */
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out:
    free(opts.mountpoint);
    fuse_opt_free_args(&args);
    return ret ? 1 : 0;
}
