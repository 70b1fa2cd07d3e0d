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

/* Takes (type F_WRLCK or F_RDLCK) or drops (F_UNLCK) an open-file-description
 * lock on bytes [start, start + length) of fd without waiting
 * (fcntl(2) F_OFD_SETLK, which Swift's Glibc module does not declare). The
 * lock belongs to the open file description: it conflicts with locks taken
 * through any other one, in this process or another, and goes when the last
 * descriptor of it closes (the process dies, in any way).
 * Returns 0, 1 when another holds a conflicting lock, or -1 with errno set. */
int mq_ofd_lock(int fd, int type, int64_t start, int64_t length);

/* 1 when an open-file-description lock through another open file
 * conflicts with a write lock on [start, start + length) of fd (fcntl(2)
 * F_OFD_GETLK), 0 when none does, -1 with errno set. */
int mq_ofd_is_locked(int fd, int64_t start, int64_t length);

/* The O_NOATIME open flag (open(2): no access-time update on reads), which
 * Swift's Glibc module does not declare. */
int mq_o_noatime(void);

/* F_WRLCK, F_RDLCK and F_UNLCK, for mq_ofd_lock. */
int mq_lock_type(int exclusive, int unlock);

/* Asks the processor to bring the cache lines of [p, p + bytes) in, for
 * memory that is about to be read (__builtin_prefetch, which Swift cannot
 * reach): a merge of thousands of partitions touches a different cursor
 * for almost every record, and this overlaps the next one's cache misses
 * with the work on the current one. Does nothing else. */
static inline void mq_prefetch(const void *p, long bytes) {
    for (long i = 0; i < bytes; i += 64) __builtin_prefetch((const char *)p + i);
}

#endif
