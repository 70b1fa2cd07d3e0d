/*
 * The floor under `mq-bench partitions` on this machine: the same bytes
 * written to and read from P partitions without mq, with the least any
 * durable log must do.
 *
 * Write: one directory per partition, each with a segment file and a
 * 128-byte state file, made before the clock starts (as `mq-topic create`
 * makes them). Then TOTAL bytes go out in rounds, as a producer that holds
 * BOUND bytes of pending batches writes them, each partition getting an
 * equal share of TOTAL (BOUND / P per partition and round, at most 1 MiB,
 * mq-produce's batch size): per partition and round one pwrite of the
 * segment, and one pwrite of the state file, opened for it when the
 * segments' descriptors leave no room to keep both open. Then one syncfs,
 * which is what makes it durable.
 *
 * With INDEXED (a fifth argument, 1; 0 or none: without), each partition
 * also has the two index files of mq's format (docs/FORMAT.md): with every
 * segment write, one pwrite to each of an entry per 4 KiB written (8 and 12
 * bytes, as index.interval.bytes makes them), so that what the file system
 * does per partition is what mq's format asks of it, four files written
 * each round.
 *
 * Read: each partition in turn, its segment opened, read in 1 MiB preads,
 * closed. No merge by time, no checksums, no decoding. With INDEXED, each
 * partition's state file is opened, read and closed first, as a reader of
 * mq's format reads `head` to learn the active segment and its end.
 *
 *   cc -O2 -o /tmp/partitions_floor bench/partitions_floor.c
 *   /tmp/partitions_floor DIR P TOTAL BOUND [INDEXED]
 *
 * Prints one line: partitions, write seconds (the writes, then syncfs),
 * read seconds. DIR must not exist; it is removed by the caller.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(const char *what, const char *path) {
    fprintf(stderr, "partitions_floor: %s %s: %s\n", what, path, strerror(errno));
    exit(74);
}

/* DIR/P/NAME into path (NAME may be empty: the partition's directory). */
static void partition_path(char *path, size_t size, const char *dir, long p, const char *name) {
    snprintf(path, size, "%s/%ld%s%s", dir, p, *name ? "/" : "", name);
}

static int open_or_fail(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot open", path);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: partitions_floor DIR PARTITIONS TOTAL_BYTES BOUND_BYTES [INDEXED]\n");
        return 64;
    }
    const char *dir = argv[1];
    long partitions = atol(argv[2]), total = atol(argv[3]), bound = atol(argv[4]);
    if (argc == 6 && strcmp(argv[5], "0") != 0 && strcmp(argv[5], "1") != 0) {
        fprintf(stderr, "partitions_floor: INDEXED must be 0 or 1, not '%s'\n", argv[5]);
        return 64;
    }
    int indexed = argc == 6 && strcmp(argv[5], "1") == 0;
    if (partitions < 1 || total < 1 || bound < 1) {
        fprintf(stderr, "partitions_floor: PARTITIONS, TOTAL_BYTES and BOUND_BYTES must be positive\n");
        return 64;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Every file of every partition open, or the segments only. */
    long files = indexed ? 4 : 2;
    int keep_heads = getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)(files * partitions + 64) <= rl.rlim_cur;
    static const char *index_names[2] = { "index", "timeindex" };
    static const long entry_bytes[2] = { 8, 12 };

    char path[4096];
    if (mkdir(dir, 0777) != 0) fail("cannot create", dir);
    for (long p = 0; p < partitions; p++) {
        partition_path(path, sizeof path, dir, p, "");
        if (mkdir(path, 0777) != 0) fail("cannot create", path);
        partition_path(path, sizeof path, dir, p, "segment");
        close(open_or_fail(path, O_WRONLY | O_CREAT | O_EXCL));
        partition_path(path, sizeof path, dir, p, "state");
        close(open_or_fail(path, O_WRONLY | O_CREAT | O_EXCL));
        for (int i = 0; indexed && i < 2; i++) {
            partition_path(path, sizeof path, dir, p, index_names[i]);
            close(open_or_fail(path, O_WRONLY | O_CREAT | O_EXCL));
        }
    }
    sync();

    long chunk = bound / partitions;
    if (chunk > 1L << 20) chunk = 1L << 20;
    if (chunk < 1) chunk = 1;
    char *data = malloc((size_t)chunk);
    char state[128];
    long *size = calloc((size_t)partitions, sizeof *size);
    int *segment = malloc(sizeof(int) * (size_t)partitions);
    int *head = malloc(sizeof(int) * (size_t)partitions);
    int *index[2] = { malloc(sizeof(int) * (size_t)partitions), malloc(sizeof(int) * (size_t)partitions) };
    long *index_size = calloc((size_t)partitions, sizeof *index_size);
    char *entries = calloc((size_t)(chunk / 4096 + 1), 12);
    if (!data || !size || !segment || !head || !index[0] || !index[1] || !index_size || !entries) {
        fprintf(stderr, "partitions_floor: out of memory\n");
        return 71;
    }
    memset(data, 'x', (size_t)chunk);
    memset(state, 0, sizeof state);

    double start = seconds();
    for (long p = 0; p < partitions; p++) {
        partition_path(path, sizeof path, dir, p, "segment");
        segment[p] = open_or_fail(path, O_WRONLY);
        if (keep_heads) {
            partition_path(path, sizeof path, dir, p, "state");
            head[p] = open_or_fail(path, O_WRONLY);
            for (int i = 0; indexed && i < 2; i++) {
                partition_path(path, sizeof path, dir, p, index_names[i]);
                index[i][p] = open_or_fail(path, O_WRONLY);
            }
        }
    }
    for (long written = 0; written < total;) {
        for (long p = 0; p < partitions && written < total; p++) {
            /* Each partition's share of TOTAL, as keyed messages spread
             * evenly put it there: at most a chunk of it per round. */
            long share = total / partitions + (p < total % partitions ? 1 : 0);
            long n = share - size[p] < chunk ? share - size[p] : chunk;
            if (n <= 0) continue;
            if (pwrite(segment[p], data, (size_t)n, size[p]) != n) fail("cannot write", "a segment");
            size[p] += n;
            written += n;
            int h = head[p];
            if (!keep_heads) {
                partition_path(path, sizeof path, dir, p, "state");
                h = open_or_fail(path, O_WRONLY);
            }
            /* The index entries of the bytes just written. */
            long count = (size[p] / 4096) - ((size[p] - n) / 4096);
            for (int i = 0; indexed && count > 0 && i < 2; i++) {
                int x = keep_heads ? index[i][p] : -1;
                if (!keep_heads) {
                    partition_path(path, sizeof path, dir, p, index_names[i]);
                    x = open_or_fail(path, O_WRONLY);
                }
                long bytes = count * entry_bytes[i];
                if (pwrite(x, entries, (size_t)bytes, index_size[p] * entry_bytes[i]) != bytes) fail("cannot write", "an index");
                if (!keep_heads) close(x);
            }
            if (indexed) index_size[p] += count;
            if (pwrite(h, state, sizeof state, 0) != (ssize_t)sizeof state) fail("cannot write", "a state file");
            if (!keep_heads) close(h);
        }
    }
    if (syncfs(segment[0]) != 0) fail("cannot sync", dir);
    for (long p = 0; p < partitions; p++) {
        close(segment[p]);
        if (keep_heads) close(head[p]);
        for (int i = 0; indexed && keep_heads && i < 2; i++) close(index[i][p]);
    }
    double written_at = seconds();

    char *buffer = malloc(1 << 20);
    long read_total = 0;
    for (long p = 0; p < partitions; p++) {
        if (indexed) {
            /* What a reader of the format asks first: the state file, for
             * the active segment and where its valid bytes end. */
            partition_path(path, sizeof path, dir, p, "state");
            int sfd = open_or_fail(path, O_RDONLY | O_NOATIME);
            /* Short only for a partition that got no bytes (TOTAL < P). */
            if (pread(sfd, state, sizeof state, 0) < 0) fail("cannot read", path);
            close(sfd);
        }
        partition_path(path, sizeof path, dir, p, "segment");
        int fd = open_or_fail(path, O_RDONLY | O_NOATIME);
        ssize_t n;
        for (off_t at = 0; (n = pread(fd, buffer, 1 << 20, at)) > 0; at += n) read_total += n;
        close(fd);
    }
    double read_at = seconds();
    if (read_total != total) { fprintf(stderr, "partitions_floor: read %ld bytes of %ld\n", read_total, total); return 70; }
    printf("%ld %.3f %.3f\n", partitions, written_at - start, read_at - written_at);
    return 0;
}
