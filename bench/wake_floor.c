/*
 * The floor under `mq-bench e2e` on this machine: the same chain without mq.
 *
 * Once a millisecond a writer stamps the monotonic time into a record and
 * appends it; a follower process wakes, reads the new bytes and writes the
 * stamp to a pipe; a receiver wakes on the pipe and records the latency.
 *
 *   mode 0  pipe only: the writer writes the pipe the follower reads
 *   mode 1  file: append to a file, follower woken by inotify; the writer's
 *           own thread receives (it sleeps on the pipe right after writing)
 *   mode 2  as 1, but a thread of its own receives, as mq-bench e2e does
 *   mode 3  as 2, with mq's system calls per message: the writer's flock,
 *           pread of the state, fstat, pwrite, pwrite of the state and
 *           unlock; the follower's pread, write, read of the events and
 *           the end-of-data pread and state pread
 *
 * An optional second argument makes the follower poll without sleeping for
 * that many microseconds before it sleeps.
 *
 *   cc -O2 -pthread -o /tmp/wake_floor bench/wake_floor.c && /tmp/wake_floor 2
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MESSAGES = 3000, RECORD = 82, STATE = 128 };

static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long latencies[MESSAGES];
static int to_writer[2], to_receiver[2];

/* Receives one stamp from the follower and records its latency. */
static void receive(int i) {
    struct pollfd p = {to_receiver[0], POLLIN, 0};
    long long sent;
    poll(&p, 1, -1);
    if (read(to_receiver[0], &sent, 8) == 8) latencies[i] = now() - sent;
}

static void *receiver(void *unused) {
    (void)unused;
    for (int i = 0; i < MESSAGES; i++) receive(i);
    return NULL;
}

static void follow(int mode, int spin, int log, int state, int events) {
    static char buffer[1 << 20];
    char event_buffer[4096];
    off_t position = 0;
    for (;;) {
        struct pollfd p = {mode == 0 ? to_writer[0] : events, POLLIN, 0};
        int ready = 0;
        for (long long start = now(); spin && now() - start < spin * 1000LL;)
            if (poll(&p, 1, 0) > 0) { ready = 1; break; }
        if (!ready) poll(&p, 1, -1);
        if (mode == 0) {
            ssize_t n = read(to_writer[0], buffer, 8);
            if (n <= 0) _exit(0);
            write(to_receiver[1], buffer, 8);
            continue;
        }
        if (mode < 3) while (read(events, event_buffer, sizeof event_buffer) > 0) {}
        ssize_t n = pread(log, buffer, sizeof buffer, position);
        if (n <= 0) continue;
        for (ssize_t k = 0; k + RECORD <= n; k += RECORD) write(to_receiver[1], buffer + k, 8);
        position += n;
        if (mode == 3) {
            read(events, event_buffer, sizeof event_buffer);
            pread(log, buffer, sizeof buffer, position);
            pread(state, buffer, STATE, 0);
        }
    }
}

int main(int argc, char **argv) {
    int mode = argc > 1 ? atoi(argv[1]) : 2;
    int spin = argc > 2 ? atoi(argv[2]) : 0;
    char dir[] = "/var/tmp/wake_floorXXXXXX", log_path[256], state_path[256];
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(log_path, sizeof log_path, "%s/00000000000000000000.log", dir);
    snprintf(state_path, sizeof state_path, "%s/head", dir);
    int log = open(log_path, O_CREAT | O_RDWR, 0644);
    int state = open(state_path, O_CREAT | O_RDWR, 0644);
    char record[RECORD] = {0}, state_bytes[STATE] = {0};
    pwrite(state, state_bytes, STATE, 0);
    if (pipe(to_writer) || pipe(to_receiver)) { perror("pipe"); return 1; }
    int events = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(events, log_path, IN_MODIFY);

    pid_t child = fork();
    if (child == 0) follow(mode, spin, log, state, events);
    usleep(100000);
    pthread_t thread;
    if (mode >= 2) pthread_create(&thread, NULL, receiver, NULL);
    long long start = now();
    for (int i = 0; i < MESSAGES; i++) {
        long long due = start + (i + 1) * 1000000LL;
        struct timespec t = {due / 1000000000, due % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0) {}
        long long stamp = now();
        memcpy(record, &stamp, 8);
        if (mode == 0) {
            write(to_writer[1], record, 8);
        } else if (mode == 3) {
            struct stat st;
            flock(state, LOCK_EX);
            pread(state, state_bytes, STATE, 0);
            fstat(log, &st);
            pwrite(log, record, RECORD, st.st_size);
            pwrite(state, state_bytes, STATE, 0);
            flock(state, LOCK_UN);
        } else {
            pwrite(log, record, RECORD, (off_t)i * RECORD);
        }
        if (mode < 2) receive(i);
    }
    if (mode >= 2) pthread_join(thread, NULL);
    qsort(latencies, MESSAGES, sizeof latencies[0], compare);
    static const char *names[] = {"pipe", "file, same thread", "file, receiver thread", "file, mq's system calls"};
    printf("mode %d (%s) spin %d: p50 %.1f p90 %.1f p99 %.1f us\n", mode, names[mode < 0 || mode > 3 ? 0 : mode], spin,
           latencies[MESSAGES / 2] / 1e3, latencies[MESSAGES * 9 / 10] / 1e3, latencies[MESSAGES * 99 / 100] / 1e3);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    unlink(log_path);
    unlink(state_path);
    rmdir(dir);
    return 0;
}
