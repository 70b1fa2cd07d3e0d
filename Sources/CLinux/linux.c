#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
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

int mq_ofd_lock(int fd, int type, int64_t start, int64_t length) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = (short)type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)start;
    fl.l_len = (off_t)length;
    for (;;) {
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EACCES) return 1;
        return -1;
    }
}

int mq_ofd_is_locked(int fd, int64_t start, int64_t length) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)start;
    fl.l_len = (off_t)length;
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return -1;
    return fl.l_type == F_UNLCK ? 0 : 1;
}

int mq_lock_type(int exclusive, int unlock) {
    return unlock ? F_UNLCK : (exclusive ? F_WRLCK : F_RDLCK);
}

int mq_o_noatime(void) {
    return O_NOATIME;
}
