#ifndef MQ_FUZZ_MAIN_H
#define MQ_FUZZ_MAIN_H

/* The program's entry point. SwiftPM links an executable target with
 * `--defsym main=<module>_main`, and the fuzz target has no Swift main
 * (it is built with -parse-as-library): this one hands over to libFuzzer. */
int mq_fuzz_main(int argc, char **argv);

#endif
