// The native client's latency row of bench/compare.sh: publish-to-delivery
// latency through JetStream at a fixed rate. Makes JetStream stream STREAM
// afresh (subject SUBJECT, file storage), starts a follower on it, publishes N
// messages paced at RATE per second (default 1000), and prints one JSON object
// as bench/compare_peers.py's results file holds them (group "latency", key
// "nats-latency", samples and percentiles in µs), for its `report`.
//
// Each message is SIZE bytes (default 99): its send time, CLOCK_MONOTONIC in
// ns as 20 zero-padded digits, then dots; the follower subtracts it from the
// time its callback starts. Both sides run in this process, so they read one
// clock, but each has its own connection, as the two processes of the Python
// harness had: a delivery never waits behind the publisher's acknowledgement
// on a shared socket.
//
// Publisher: js_Publish, every acknowledgement awaited before the next
// publish (what nats-py's js.publish did in the row this one replaces), paced
// against a schedule (message i at start + i/RATE, as paced_latency in
// compare_peers.py does), so a slow acknowledgement delays the next sends only
// until the schedule is caught up. js_Publish is a request, which libnats
// sends at once rather than through its flusher.
//
// Follower: an ordered push consumer (flow control, no acknowledgements) with
// a callback. The server pushes each message as soon as the stream has stored
// it, so the figure is the path publish -> store -> delivery and nothing else.
// A pull consumer fetching one message at a time would need a request waiting
// at the server for every message and a new one after each delivery: it would
// add the consumer's request loop to what is measured, which no application
// that wants low latency does. The ordered consumer is also what the Python
// follower used, so the old and the new row differ by the client only.
//
// Bounded: after the last publish it waits until every message has arrived or
// LIMIT seconds (default 120, at most N/RATE + 30) have passed since the
// start, and fails with a message when any is missing.
//
//   cc -O2 -o nats_lat bench/nats_lat.c -lnats        (includes bench/nats_bench.h)
//   nats_lat [-r RATE] [-s SIZE] [-t LIMIT] URL STREAM SUBJECT N
#include <nats/nats.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define PROG "nats_lat"
#include "nats_bench.h"

static int64_t *lat_ns;      // one per message received, in arrival order
static long wanted;
static atomic_long received;

static int usage(void) {
    fprintf(stderr, "usage: nats_lat [-r RATE] [-s SIZE] [-t LIMIT] URL STREAM SUBJECT N\n");
    return 64;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure) {
    (void)nc; (void)sub; (void)closure;
    int64_t at = now_ns();
    const char *data = natsMsg_GetData(m);
    int64_t sent = 0;
    for (int i = 0; i < 20 && i < natsMsg_GetDataLength(m); i++) sent = sent * 10 + (data[i] - '0');
    long i = atomic_load(&received);
    // Only this subscription's delivery thread writes; extra messages are not counted.
    if (i < wanted) {
        lat_ns[i] = at - sent;
        atomic_store(&received, i + 1);
    }
    natsMsg_Destroy(m);
}

static int compare_ns(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// The p-th percentile in µs as compare_peers.py's percentiles() takes it:
// the sorted sample at index floor(p / 100 * count).
static double pct(const int64_t *sorted, long count, double p) {
    long i = (long)(p / 100 * count);
    if (i > count - 1) i = count - 1;
    return sorted[i] / 1000.0;
}

int main(int argc, char **argv) {
    long rate = 1000, size = 99, limit = 120;
    int opt;
    while ((opt = getopt(argc, argv, "r:s:t:")) != -1) {
        if (opt == 'r') rate = number(optarg);
        else if (opt == 's') size = number(optarg);
        else if (opt == 't') limit = number(optarg);
        else return usage();
    }
    const char *url, *stream, *subject;
    long n;
    if (!operands(argc, argv, &url, &stream, &subject, &n)) return usage();
    if (n < 1 || n > 10000000 || rate < 1 || rate > 1000000 || size < 20 || size > (1 << 20) || limit < 1) {
        fprintf(stderr, "nats_lat: N must be 1 to 10000000, RATE 1 to 1000000, SIZE 20 to 1048576, LIMIT at least 1\n");
        return 64;
    }
    double bound = (double)n / rate + 30;
    if (bound > limit) bound = limit;
    double deadline = now() + bound;
    wanted = n;
    lat_ns = malloc(sizeof(int64_t) * n);
    char *payload = malloc(size + 1);   // + 1: snprintf's terminating NUL
    if (!lat_ns || !payload) { fprintf(stderr, "nats_lat: out of memory\n"); return 71; }
    memset(payload, '.', size);

    natsConnection *pub_nc = NULL, *sub_nc = NULL;
    jsCtx *pub_js = NULL, *sub_js = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    if ((s = natsConnection_ConnectTo(&pub_nc, url)) != NATS_OK) return fail("connect", s);
    if ((s = natsConnection_ConnectTo(&sub_nc, url)) != NATS_OK) return fail("connect", s);
    if ((s = natsConnection_JetStream(&pub_js, pub_nc, NULL)) != NATS_OK) return fail("jetstream", s);
    if ((s = natsConnection_JetStream(&sub_js, sub_nc, NULL)) != NATS_OK) return fail("jetstream", s);

    // A fresh stream, so that the follower sees this run's messages only.
    js_DeleteStream(pub_js, stream, NULL, NULL);
    if ((s = add_file_stream(NULL, pub_js, stream, subject, 1, &jerr)) != NATS_OK) return fail("add stream", s);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    if ((s = js_Subscribe(&sub, sub_js, subject, on_msg, NULL, NULL, &so, &jerr)) != NATS_OK) return fail("subscribe", s);
    if ((s = natsSubscription_SetPendingLimits(sub, -1, -1)) != NATS_OK) return fail("pending limits", s);
    if ((s = natsConnection_Flush(sub_nc)) != NATS_OK) return fail("flush", s);
    nats_Sleep(200);   // as the Python harness let its follower settle

    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++) {
        int64_t due = (int64_t)start.tv_sec * 1000000000 + start.tv_nsec + i * 1000000000 / rate;
        struct timespec at = { .tv_sec = due / 1000000000, .tv_nsec = due % 1000000000 };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {}
        snprintf(payload, 21, "%020lld", (long long)now_ns());
        payload[20] = '.';
        if ((s = js_Publish(NULL, pub_js, subject, payload, (int)size, &po, &jerr)) != NATS_OK) {
            fprintf(stderr, "nats_lat: publish %ld of %ld: %s (JetStream error %d)\n", i + 1, n, natsStatus_GetText(s), (int)jerr);
            return 69;
        }
        if (now() > deadline) {
            fprintf(stderr, "nats_lat: published %ld of %ld within %.0f s\n", i + 1, n, bound);
            return 69;
        }
    }
    while (atomic_load(&received) < n && now() < deadline) nats_Sleep(5);
    long got = atomic_load(&received);
    if (got < n) {
        fprintf(stderr, "nats_lat: the follower received %ld of %ld within %.0f s\n", got, n, bound);
        return 69;
    }
    natsSubscription_Unsubscribe(sub);

    qsort(lat_ns, n, sizeof(int64_t), compare_ns);
    printf("{\"group\": \"latency\", \"system\": \"NATS\", \"key\": \"nats-latency\", "
           "\"path\": \"libnats %s: js_Publish, ack awaited, one per %.0f us -> ordered push consumer "
           "on its own connection in the same process\", "
           "\"samples\": %ld, \"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, \"p99.9_us\": %.3f, \"max_us\": %.3f}\n",
           nats_GetVersion(), 1e6 / rate, n, pct(lat_ns, n, 50), pct(lat_ns, n, 90), pct(lat_ns, n, 99),
           pct(lat_ns, n, 99.9), lat_ns[n - 1] / 1000.0);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(sub_js);
    jsCtx_Destroy(pub_js);
    natsConnection_Destroy(sub_nc);
    natsConnection_Destroy(pub_nc);
    free(payload);
    free(lat_ns);
    return 0;
}
