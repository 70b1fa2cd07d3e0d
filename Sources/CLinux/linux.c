#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/mman.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
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

/* Mapped reads: a process-wide count of the mappings, bounded, and the
 * SIGBUS handler that turns a page cut from under a mapping into zeros. */
static pthread_once_t mapped_reads_once = PTHREAD_ONCE_INIT;
static struct sigaction previous_bus_action;
static long page_bytes = 4096;
static long mapping_limit = 16384;
static long mappings;

static void on_bus_error(int signal, siginfo_t *info, void *context) {
    (void)signal; (void)context;
    int saved = errno;  /* the interrupted code's */
    if (info->si_code == BUS_ADRERR && info->si_addr != NULL) {
        uintptr_t page = (uintptr_t)info->si_addr & ~(uintptr_t)(page_bytes - 1);
        /* mmap is a plain system call, safe in a handler; the faulting read
         * is retried on return and finds a page of zeros. */
        void *zeros = mmap((void *)page, (size_t)page_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (zeros != MAP_FAILED) { errno = saved; return; }
    }
    /* Not ours: the previous disposition takes the retried fault. */
    sigaction(SIGBUS, &previous_bus_action, NULL);
    errno = saved;
}

static void start_mapped_reads(void) {
    long size = sysconf(_SC_PAGESIZE);
    if (size > 0) page_bytes = size;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f != NULL) {
        long most = 0;
        if (fscanf(f, "%ld", &most) == 1 && most > 0) mapping_limit = most / 4;
        fclose(f);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_bus_error;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous_bus_action);
}

const void *mq_map_for_reading(int fd, int64_t offset, int64_t length) {
    pthread_once(&mapped_reads_once, start_mapped_reads);
    if (length <= 0 || offset < 0 || offset % page_bytes != 0) { errno = EINVAL; return NULL; }
    if (__atomic_add_fetch(&mappings, 1, __ATOMIC_RELAXED) > mapping_limit) {
        __atomic_sub_fetch(&mappings, 1, __ATOMIC_RELAXED);
        errno = ENOMEM;
        return NULL;
    }
    void *p = mmap(NULL, (size_t)length, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)offset);
    if (p == MAP_FAILED) {
        int saved = errno;
        __atomic_sub_fetch(&mappings, 1, __ATOMIC_RELAXED);
        errno = saved;
        return NULL;
    }
    return p;
}

void mq_unmap(const void *address, int64_t length) {
    if (address == NULL) return;
    munmap((void *)address, (size_t)length);
    __atomic_sub_fetch(&mappings, 1, __ATOMIC_RELAXED);
}

long mq_page_size(void) {
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? size : 4096;
}
