/*
 * kafka_mock: a three-broker librdkafka mock cluster for the black-box tests
 * of mq-mirror (Tests/blackbox/test_mirror_kafka.py compiles it with
 * `cc kafka_mock.c $(pkg-config --cflags --libs rdkafka)`).
 *
 *   kafka_mock [SECONDS]
 *
 * Prints the bootstrap servers (127.0.0.1 only) on one line, then reads one
 * command a line on standard input and answers each with "ok" or
 * "error: ..." on standard output:
 *
 *   create TOPIC PARTITIONS REPLICAS
 *   down BROKER | up BROKER                      (broker ids are 1 to 3)
 *   leader TOPIC PARTITION BROKER
 *   errors APIKEY CODE...                        (e.g. "errors 0 6 7": the next
 *                                                 two Produce requests fail with
 *                                                 NOT_LEADER_FOR_PARTITION, then
 *                                                 REQUEST_TIMED_OUT)
 *   rtt BROKER MS
 *
 * It exits on end of input, SIGTERM or SIGINT, and after SECONDS (default
 * 600) whatever happens, so that a test that dies leaves nothing running.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ERRORS 64

static int answer(rd_kafka_resp_err_t err) {
        if (err)
                printf("error: %s\n", rd_kafka_err2str(err));
        else
                printf("ok\n");
        return fflush(stdout);
}

static int run(rd_kafka_mock_cluster_t *mc, char *line) {
        char *words[2 + MAX_ERRORS];
        int n = 0;
        for (char *w = strtok(line, " \t\r\n"); w && n < 2 + MAX_ERRORS; w = strtok(NULL, " \t\r\n"))
                words[n++] = w;
        if (n == 0)
                return 0;
        const char *cmd = words[0];
        if (!strcmp(cmd, "create") && n == 4)
                return answer(rd_kafka_mock_topic_create(mc, words[1], atoi(words[2]), atoi(words[3])));
        if (!strcmp(cmd, "down") && n == 2)
                return answer(rd_kafka_mock_broker_set_down(mc, atoi(words[1])));
        if (!strcmp(cmd, "up") && n == 2)
                return answer(rd_kafka_mock_broker_set_up(mc, atoi(words[1])));
        if (!strcmp(cmd, "leader") && n == 4)
                return answer(rd_kafka_mock_partition_set_leader(mc, words[1], atoi(words[2]), atoi(words[3])));
        if (!strcmp(cmd, "rtt") && n == 3)
                return answer(rd_kafka_mock_broker_set_rtt(mc, atoi(words[1]), atoi(words[2])));
        if (!strcmp(cmd, "errors") && n >= 3) {
                rd_kafka_resp_err_t errs[MAX_ERRORS];
                for (int i = 2; i < n; i++)
                        errs[i - 2] = (rd_kafka_resp_err_t)atoi(words[i]);
                rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(words[1]), (size_t)(n - 2), errs);
                return answer(RD_KAFKA_RESP_ERR_NO_ERROR);
        }
        printf("error: unknown command or wrong arguments: %s\n", cmd);
        return fflush(stdout);
}

int main(int argc, char **argv) {
        unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 600;
        char errstr[512];

        /* SIGTERM and SIGINT end the process, and the alarm bounds its life. */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        alarm(seconds ? seconds : 600);

        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
        if (!rk) {
                fprintf(stderr, "kafka_mock: %s\n", errstr);
                return 70;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 3);
        if (!mc) {
                fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
                return 70;
        }
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);

        char line[4096];
        while (fgets(line, sizeof line, stdin))
                if (run(mc, line) != 0)
                        break;
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
