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

/* Maps [offset, offset + length) of fd, a file open for reading, read-only
 * into memory (mmap(2), MAP_SHARED), its pages set up at once
 * (MAP_POPULATE: one call instead of a fault per page), for a reader that reads the bytes in
 * place instead of copying them (docs/FORMAT.md §9, "Mapped reads").
 * offset must be a multiple of the page size, and the file must hold the
 * whole range when it is mapped. Returns the address, or NULL with errno
 * set: ENOMEM also when the process already holds as many of these
 * mappings as it allows itself (a quarter of vm.max_map_count, so that
 * memory allocations never find the process out of mappings).
 *
 * The first call installs a SIGBUS handler: a page of such a mapping that
 * no longer has file behind it (the file was cut shorter after it was
 * mapped) then reads as zeros instead of killing the process, and the
 * reader sees an invalid batch there, as a read would have seen the end.
 * Any other SIGBUS goes to the handler that was there before. */
const void *mq_map_for_reading(int fd, int64_t offset, int64_t length);

/* Unmaps what mq_map_for_reading mapped (the same address and length). */
void mq_unmap(const void *address, int64_t length);

/* The size of a memory page. */
long mq_page_size(void);

/* Asks the processor to bring the cache lines of [p, p + bytes) in, for
 * memory that is about to be read (__builtin_prefetch, which Swift cannot
 * reach): a merge of thousands of partitions touches a different cursor
 * for almost every record, and this overlaps the next one's cache misses
 * with the work on the current one. Does nothing else. */
static inline void mq_prefetch(const void *p, long bytes) {
    for (long i = 0; i < bytes; i += 64) __builtin_prefetch((const char *)p + i);
}

#endif
