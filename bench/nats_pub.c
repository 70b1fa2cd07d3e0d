// The native client's side of bench/mirror.sh and bench/compare.sh: publishes
// N messages to SUBJECT in JetStream stream STREAM (created with subjects
// SUBJECT when missing; REPLICAS, default 1, is the new stream's replica
// count) and prints "MESSAGES SECONDS MSG_PER_S".
//
// The messages are N copies of SIZE bytes of 'x', or with -f FILE the first N
// lines of FILE without their newlines (read before the clock starts), so that
// the same bytes go through as through the other systems compared.
//
// By default each message is a JetStream publish through libnats's
// asynchronous publisher, and the time runs until every acknowledgement is in.
// With -c they are core NATS publishes (no acknowledgement per message) to the
// stream's subject, then a flush, and the time runs until the stream's info
// says it holds every message.
//
//   cc -O2 -o nats_pub bench/nats_pub.c -lnats        (includes bench/nats_bench.h)
//   nats_pub [-c] URL STREAM SUBJECT N SIZE [REPLICAS]
//   nats_pub [-c] -f FILE URL STREAM SUBJECT N [REPLICAS]
#include <nats/nats.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define PROG "nats_pub"
#include "nats_bench.h"

static int failed;
static void on_error(jsCtx *js, jsPubAckErr *pae, void *closure) {
    (void)js; (void)pae; (void)closure;
    failed++;
}

static int usage(void) {
    fprintf(stderr, "usage: nats_pub [-c] URL STREAM SUBJECT N SIZE [REPLICAS]\n"
                    "       nats_pub [-c] -f FILE URL STREAM SUBJECT N [REPLICAS]\n");
    return 64;
}

// The first n lines of path (pointers into one buffer, lengths without the newline).
static int read_lines(const char *path, long n, char ***lines, int **lens) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "nats_pub: %s: %s\n", path, strerror(errno)); return 66; }
    size_t cap = 1 << 20, len = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) { fprintf(stderr, "nats_pub: out of memory\n"); return 71; }
    if (bad) { fprintf(stderr, "nats_pub: %s: read error\n", path); return 74; }
    *lines = malloc(sizeof(char *) * (n ? n : 1));
    *lens = malloc(sizeof(int) * (n ? n : 1));
    if (!*lines || !*lens) { fprintf(stderr, "nats_pub: out of memory\n"); return 71; }
    size_t at = 0;
    for (long i = 0; i < n; i++) {
        char *nl = at < len ? memchr(buf + at, '\n', len - at) : NULL;
        size_t end = nl ? (size_t)(nl - buf) : len;
        if (at >= len || end - at > (1 << 20)) {
            fprintf(stderr, "nats_pub: %s: %ld lines of at most 1 MiB, wanted %ld\n", path, i, n);
            return 65;
        }
        (*lines)[i] = buf + at;
        (*lens)[i] = (int)(end - at);
        at = end + 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *file = NULL;
    int core = 0, opt;
    while ((opt = getopt(argc, argv, "cf:")) != -1) {
        if (opt == 'c') core = 1;
        else if (opt == 'f') file = optarg;
        else return usage();
    }
    argc -= optind; argv += optind;
    int positional = file ? 4 : 5;
    if (argc != positional && argc != positional + 1) return usage();
    const char *url = argv[0], *stream = argv[1], *subject = argv[2];
    long n = number(argv[3]), size = file ? 1 : number(argv[4]);
    long replicas = argc > positional ? number(argv[positional]) : 1;
    if (n < 0 || n > 100000000 || size < 1 || size > (1 << 20) || replicas < 1 || replicas > 5) {
        fprintf(stderr, "nats_pub: N must be 0 to 100000000, SIZE 1 to 1048576, REPLICAS 1 to 5\n");
        return 64;
    }
    char **lines = NULL;
    int *lens = NULL;
    char *payload = NULL;
    if (file) {
        int st = read_lines(file, n, &lines, &lens);
        if (st) return st;
    } else {
        payload = malloc(size);
        if (!payload) { fprintf(stderr, "nats_pub: out of memory\n"); return 71; }
        memset(payload, 'x', size);
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) { fprintf(stderr, "nats_pub: connect: %s\n", natsStatus_GetText(s)); return 69; }
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 65536;
    // With 65,536 publishes awaiting acknowledgement the next one waits for
    // room; a replicated stream under load can take longer than the default
    // 200 ms to make it, so wait up to 30 s instead of failing. (mq-mirror
    // never has that many out: it awaits each chunk's acknowledgements.)
    jo.PublishAsync.StallWait = 30000;
    jo.PublishAsync.ErrHandler = on_error;
    if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) { fprintf(stderr, "nats_pub: %s\n", natsStatus_GetText(s)); return 69; }
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) == NATS_NOT_FOUND) {
        if ((s = add_file_stream(&si, js, stream, subject, (int)replicas, &jerr)) != NATS_OK) return fail("add stream", s);
    }
    uint64_t before = si ? si->State.Msgs : 0;
    jsStreamInfo_Destroy(si);
    double start = now();
    for (long i = 0; i < n; i++) {
        const char *data = file ? lines[i] : payload;
        int len = file ? lens[i] : (int)size;
        s = core ? natsConnection_Publish(nc, subject, data, len)
                 : js_PublishAsync(js, subject, data, len, NULL);
        if (s != NATS_OK) {
            fprintf(stderr, "nats_pub: publish: %s\n", natsStatus_GetText(s));
            return 69;
        }
    }
    if (core) {
        if ((s = natsConnection_FlushTimeout(nc, 120000)) != NATS_OK) {
            fprintf(stderr, "nats_pub: flush: %s\n", natsStatus_GetText(s));
            return 69;
        }
        // Core publishes have no acknowledgement: done once the stream holds them all.
        for (;;) {
            si = NULL;
            if ((s = js_GetStreamInfo(&si, js, stream, NULL, &jerr)) != NATS_OK) {
                fprintf(stderr, "nats_pub: stream info: %s\n", natsStatus_GetText(s));
                return 69;
            }
            uint64_t held = si->State.Msgs - before;
            jsStreamInfo_Destroy(si);
            if (held >= (uint64_t)n) break;
            if (now() - start > 120) {
                fprintf(stderr, "nats_pub: the stream holds %llu of %ld after 120 s\n", (unsigned long long)held, n);
                return 69;
            }
            nats_Sleep(5);
        }
    } else {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 120000;
        if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK || failed) {
            fprintf(stderr, "nats_pub: %d failed (%s)\n", failed, natsStatus_GetText(s));
            return 69;
        }
    }
    double t = now() - start;
    printf("%ld %.3f %.0f\n", n, t, n / t);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(payload);
    return 0;
}
