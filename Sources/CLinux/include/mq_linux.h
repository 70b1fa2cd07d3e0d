#ifndef MQ_LINUX_H
#define MQ_LINUX_H

#include <stdint.h>

/* Starts writing back the dirty pages of [offset, offset + length) of fd
 * without waiting for them (sync_file_range(2) with SYNC_FILE_RANGE_WRITE,
 * which Swift's Glibc module does not declare). It makes nothing durable by
 * itself: a later fdatasync still does that, with less left to write.
 * Returns 0, or -1 with errno set. */
int mq_start_writeback(int fd, int64_t offset, int64_t length);

/* Commits the whole file system holding fd to stable storage (syncfs(2),
 * which Swift's Glibc module does not declare). Returns 0, or -1 with errno set. */
int mq_syncfs(int fd);

/* The type of the file system holding fd (fstatfs(2)'s f_type, a magic
 * number such as 0xEF53 for ext2/3/4; <sys/vfs.h> is not in Swift's Glibc
 * module), or 0 when it cannot be read. */
uint64_t mq_file_system_type(int fd);

#endif
