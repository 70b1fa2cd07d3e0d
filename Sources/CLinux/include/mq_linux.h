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

#endif
