/*
 * What opening and holding many partitions costs without mq: the floor
 * under a reader's positioning (docs/BENCHMARKS.md, 2026-12-04). Walks the
 * partitions of a topic mq wrote (TOPIC_DIR/0 .. TOPIC_DIR/P-1, segment 0
 * of each) with the calls a reader could make, one way per run:
 *
 *   open        open the segment (O_NOATIME), nothing else
 *   stat        open, fstat
 *   pread       open, one 16 KiB pread into the same buffer
 *   openat      as pread, opened relative to the topic's directory
 *   map         open, fstat, mmap (pages set up at the first touch)
 *   populate    open, fstat, mmap with MAP_POPULATE
 *   head        open the segment; head opened, read (128 bytes), closed
 *   map-held    open, fstat, mmap with MAP_POPULATE, every line touched:
 *               each partition's bytes held at once, as a merge holds them
 *   arena-held  the same bytes read with pread into one anonymous region
 *               populated first (its population timed apart)
 *   malloc-held the same into one malloc'ed region (pages faulted as read)
 *
 *   cc -O2 -o /tmp/open_floor bench/open_floor.c
 *   /tmp/open_floor TOPIC_DIR PARTITIONS WAY
 *
 * Prints the way, the seconds for all partitions, and for the held ways
 * the seconds spent populating first. Descriptors are left open, as a
 * merge's are (keep PARTITIONS below the open-file limit).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define SLOT (16 << 10)

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: open_floor TOPIC_DIR PARTITIONS WAY\n");
        return 64;
    }
    const char *topic = argv[1], *way = argv[3];
    long partitions = atol(argv[2]);
    if (partitions < 1) { fprintf(stderr, "open_floor: PARTITIONS must be positive\n"); return 64; }
    int dir = open(topic, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) { perror(topic); return 66; }
    static char buffer[SLOT];
    char path[4096];
    long sum = 0;
    char *region = NULL;
    double populated = 0, start = seconds();
    if (strcmp(way, "arena-held") == 0) {
        region = mmap(NULL, (size_t)partitions * SLOT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (region == MAP_FAILED) { perror("mmap"); return 71; }
        populated = seconds() - start;
    } else if (strcmp(way, "malloc-held") == 0) {
        region = malloc((size_t)partitions * SLOT);
        if (!region) { fprintf(stderr, "open_floor: out of memory\n"); return 71; }
    }
    for (long p = 0; p < partitions; p++) {
        int fd;
        if (strcmp(way, "openat") == 0) {
            snprintf(path, sizeof path, "%ld/00000000000000000000.log", p);
            fd = openat(dir, path, O_RDONLY | O_NOATIME | O_CLOEXEC);
        } else {
            snprintf(path, sizeof path, "%s/%ld/00000000000000000000.log", topic, p);
            fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
        }
        if (fd < 0) { perror(path); return 66; }
        struct stat st;
        if (strcmp(way, "stat") == 0) {
            fstat(fd, &st);
            sum += st.st_size;
        } else if (strcmp(way, "pread") == 0 || strcmp(way, "openat") == 0) {
            sum += pread(fd, buffer, SLOT, 0);
        } else if (strcmp(way, "map") == 0 || strcmp(way, "populate") == 0 || strcmp(way, "map-held") == 0) {
            fstat(fd, &st);
            if (st.st_size == 0) continue;
            int flags = MAP_SHARED | (strcmp(way, "map") == 0 ? 0 : MAP_POPULATE);
            char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, flags, fd, 0);
            if (m == MAP_FAILED) { perror("mmap"); return 71; }
            long step = strcmp(way, "map-held") == 0 ? 64 : st.st_size;
            for (long i = 0; i < st.st_size; i += step) sum += m[i];
        } else if (strcmp(way, "head") == 0) {
            snprintf(path, sizeof path, "%s/%ld/head", topic, p);
            int h = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC);
            if (h < 0) { perror(path); return 66; }
            sum += pread(h, buffer, 128, 0);
            close(h);
        } else if (region) {
            char *slot = region + (size_t)p * SLOT;
            long n = pread(fd, slot, SLOT, 0);
            for (long i = 0; i < n; i += 64) sum += slot[i];
        } else if (strcmp(way, "open") != 0) {
            fprintf(stderr, "open_floor: unknown way '%s'\n", way);
            return 64;
        }
    }
    printf("%s %.3f populate %.3f (%ld)\n", way, seconds() - start, populated, sum);
    return 0;
}
