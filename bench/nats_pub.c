// The native client's side of bench/mirror.sh: publishes N messages of SIZE
// bytes to SUBJECT in JetStream stream STREAM (created with subjects
// SUBJECT when missing) with libnats's asynchronous publish, waits for every
// acknowledgement, and prints "MESSAGES SECONDS MSG_PER_S". REPLICAS (default
// 1) is the new stream's replica count.
//
//   cc -O2 -o nats_pub bench/nats_pub.c -lnats
//   nats_pub nats://127.0.0.1:4222 STREAM SUBJECT N SIZE [REPLICAS]
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int failed;
static void on_error(jsCtx *js, jsPubAckErr *pae, void *closure) {
    (void)js; (void)pae; (void)closure;
    failed++;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: nats_pub URL STREAM SUBJECT N SIZE [REPLICAS]\n");
        return 64;
    }
    const char *url = argv[1], *stream = argv[2], *subject = argv[3];
    long n = atol(argv[4]), size = atol(argv[5]);
    long replicas = argc == 7 ? atol(argv[6]) : 1;
    if (n < 0 || size < 1 || size > (1 << 20) || replicas < 1 || replicas > 5) {
        fprintf(stderr, "nats_pub: N must be 0 or more, SIZE 1 to 1048576, REPLICAS 1 to 5\n");
        return 64;
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
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = stream;
        cfg.Subjects = &subject;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Replicas = replicas;
        if ((s = js_AddStream(&si, js, &cfg, NULL, &jerr)) != NATS_OK) { fprintf(stderr, "nats_pub: add stream: %s\n", natsStatus_GetText(s)); return 69; }
    }
    jsStreamInfo_Destroy(si);
    char *payload = malloc(size);
    memset(payload, 'x', size);
    double start = now();
    for (long i = 0; i < n; i++) {
        if ((s = js_PublishAsync(js, subject, payload, (int)size, NULL)) != NATS_OK) {
            fprintf(stderr, "nats_pub: publish: %s\n", natsStatus_GetText(s));
            return 69;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK || failed) {
        fprintf(stderr, "nats_pub: %d failed (%s)\n", failed, natsStatus_GetText(s));
        return 69;
    }
    double t = now() - start;
    printf("%ld %.3f %.0f\n", n, t, n / t);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(payload);
    return 0;
}
