/* LZ4F_getErrorCode and the LZ4F_errorCodes enum sit in the "static linking
 * only" section of lz4frame.h; the shared library exports them all the same. */
#define LZ4F_STATIC_LINKING_ONLY
#include <lz4.h>
#include <lz4frame.h>
