#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/vfs.h>
#include "mq_linux.h"

int mq_start_writeback(int fd, int64_t offset, int64_t length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int mq_syncfs(int fd) {
    return syncfs(fd);
}

uint64_t mq_file_system_type(int fd) {
    struct statfs st;
    if (fstatfs(fd, &st) != 0) return 0;
    return (uint64_t)st.f_type;
}
