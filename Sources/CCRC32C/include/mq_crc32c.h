#ifndef MQ_CRC32C_H
#define MQ_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// Extends a CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) over `len`
/// bytes. Pass 0 to start. Uses the SSE 4.2 `crc32` instruction when the CPU
/// has it (checked once at run time), otherwise a slicing-by-8 table.
uint32_t mq_crc32c_extend(uint32_t crc, const void *data, size_t len);

/// 1 when the hardware path is in use.
int mq_crc32c_is_hardware(void);

/// The table path regardless of the CPU, for tests.
uint32_t mq_crc32c_extend_software(uint32_t crc, const void *data, size_t len);

#endif
