// What bench/nats_pub.c, nats_read.c and nats_lat.c share: a monotonic clock,
// strict parsing of counts and of the operands URL STREAM SUBJECT N, the
// failure message of a libnats call, and the stream they make. Each defines
// PROG, its name in messages, before including this.
#include <nats/nats.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

// The number in s, or -1 when s is not a whole decimal number.
static long number(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return -1;
    return v;
}

// The operands URL STREAM SUBJECT N that follow the options (getopt's optind);
// 0 unless there are exactly four. *n is -1 when N is not a number.
static inline int operands(int argc, char **argv, const char **url, const char **stream, const char **subject,
                           long *n) {
    if (argc - optind != 4) return 0;
    *url = argv[optind];
    *stream = argv[optind + 1];
    *subject = argv[optind + 2];
    *n = number(argv[optind + 3]);
    return 1;
}

// "PROG: what: status" on stderr; the exit status for it.
static inline int fail(const char *what, natsStatus s) {
    fprintf(stderr, "%s: %s: %s\n", PROG, what, natsStatus_GetText(s));
    return 69;
}

// Adds stream `name` holding `subject`, in files, with `replicas` replicas;
// its info in *si unless si is NULL.
static inline natsStatus add_file_stream(jsStreamInfo **si, jsCtx *js, const char *name, const char *subject,
                                         int replicas, jsErrCode *jerr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = &subject;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    return js_AddStream(si, js, &cfg, NULL, jerr);
}
