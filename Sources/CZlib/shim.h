#include <zlib.h>

/* deflateInit2 and inflateInit2 are macros, which Swift cannot import. */
static inline int mq_deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}
static inline int mq_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
