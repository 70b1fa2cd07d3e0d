#include <stddef.h>
#include <stdint.h>
#include "mq_fuzz_main.h"

/* Both are libFuzzer's interface: the driver comes with -sanitize=fuzzer,
 * the callback is the Swift target's @_cdecl function. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int mq_fuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
