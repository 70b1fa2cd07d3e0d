// What bench/nats_pub.c and bench/nats_read.c share: a monotonic clock and
// strict parsing of counts.
#include <errno.h>
#include <stdlib.h>
#include <time.h>

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
