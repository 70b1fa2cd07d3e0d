// The native client's read side of bench/compare.sh: reads N messages of
// JetStream stream STREAM (subject SUBJECT) from its first one and prints
// "MESSAGES SECONDS MSG_PER_S".
//
//   pull     (default) a durable pull consumer with AckAll: fetches BATCH
//            messages at a time (default 10000) and acknowledges the last of
//            each batch, which acknowledges the whole batch;
//   ordered  an ordered push consumer (flow control, no acknowledgements),
//            read with a synchronous subscription.
//
//   cc -O2 -o nats_read bench/nats_read.c -lnats
//   nats_read [-m pull|ordered] [-b BATCH] URL STREAM SUBJECT N
#include <nats/nats.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define PROG "nats_read"
#include "nats_bench.h"

static int usage(void) {
    fprintf(stderr, "usage: nats_read [-m pull|ordered] [-b BATCH] URL STREAM SUBJECT N\n");
    return 64;
}

int main(int argc, char **argv) {
    int ordered = 0, opt;
    long batch = 10000;
    while ((opt = getopt(argc, argv, "m:b:")) != -1) {
        if (opt == 'm' && strcmp(optarg, "pull") == 0) ordered = 0;
        else if (opt == 'm' && strcmp(optarg, "ordered") == 0) ordered = 1;
        else if (opt == 'b') batch = number(optarg);
        else return usage();
    }
    const char *url, *stream, *subject;
    long n;
    if (!operands(argc, argv, &url, &stream, &subject, &n)) return usage();
    if (n < 0 || n > 100000000 || batch < 1 || batch > 1000000) {
        fprintf(stderr, "nats_read: N must be 0 to 100000000, BATCH 1 to 1000000\n");
        return 64;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) return fail("connect", s);
    if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) return fail("jetstream", s);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.DeliverPolicy = js_DeliverAll;
    long got = 0;
    double start = now();
    if (ordered) {
        so.Ordered = true;
        if ((s = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr)) != NATS_OK) return fail("subscribe", s);
        if ((s = natsSubscription_SetPendingLimits(sub, -1, -1)) != NATS_OK) return fail("pending limits", s);
        while (got < n) {
            natsMsg *m = NULL;
            if ((s = natsSubscription_NextMsg(&m, sub, 10000)) != NATS_OK) {
                fprintf(stderr, "nats_read: received %ld of %ld: %s\n", got, n, natsStatus_GetText(s));
                return 69;
            }
            got++;
            natsMsg_Destroy(m);
        }
    } else {
        so.Config.AckPolicy = js_AckAll;
        so.Config.MaxAckPending = 4 * batch;
        so.Config.MaxRequestBatch = batch;
        if ((s = js_PullSubscribe(&sub, js, subject, "bench-pull-c", NULL, &so, &jerr)) != NATS_OK)
            return fail("pull subscribe", s);
        if ((s = natsSubscription_SetPendingLimits(sub, -1, -1)) != NATS_OK) return fail("pending limits", s);
        while (got < n) {
            natsMsgList list = {0};
            long want = n - got < batch ? n - got : batch;
            if ((s = natsSubscription_Fetch(&list, sub, (int)want, 10000, &jerr)) != NATS_OK) {
                fprintf(stderr, "nats_read: fetched %ld of %ld: %s\n", got, n, natsStatus_GetText(s));
                return 69;
            }
            if (list.Count > 0 && (s = natsMsg_Ack(list.Msgs[list.Count - 1], NULL)) != NATS_OK) return fail("ack", s);
            got += list.Count;
            natsMsgList_Destroy(&list);
        }
        // The acknowledgements are published: make sure the server has them.
        if ((s = natsConnection_Flush(nc)) != NATS_OK) return fail("flush", s);
    }
    double t = now() - start;
    printf("%ld %.3f %.0f\n", got, t, got / t);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}
