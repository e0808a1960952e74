/*
 * failing-fuse: serve one image file through FUSE, failing I/O on demand.
 *
 *   failing-fuse IMAGE MOUNTPOINT [-f] [fuse options]
 *
 * MOUNTPOINT/disk is IMAGE (same size, read/write, FOPEN_DIRECT_IO so that no
 * page cache hides errors).  Put a loop device over it with
 * `losetup --direct-io=on -f --show MOUNTPOINT/disk` and the loop device
 * returns a real EIO to O_DIRECT users (QEMU cache=none, aio=native/io_uring)
 * whenever failing is on.
 *
 * Control:
 *   SIGUSR1          fail reads and writes (and fsync) with EIO
 *   SIGUSR2          recover: serve I/O normally again
 *   MOUNTPOINT/ctl   write "fail", "fail-read", "fail-write" or "ok" (the write
 *                    returns once the state changed: what the harness uses)
 * Readiness: with FAILING_FUSE_READY_FD=N in the environment, "ready" is
 * written to fd N (and N closed) once the kernel's INIT reached the file
 * system, i.e. once MOUNTPOINT is mounted and served.
 * State changes and failed-request counts are logged on stderr.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { FAIL_READ = 1, FAIL_WRITE = 2 };

static int img_fd = -1;
static off_t img_size;
static atomic_int fail_mask;
static atomic_long n_failed_r, n_failed_w, n_ok_r, n_ok_w;

static void log_state(const char *why)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "failing-fuse: %ld.%03ld %s mask=%d failed_r=%ld failed_w=%ld ok_r=%ld ok_w=%ld\n",
            (long)ts.tv_sec, ts.tv_nsec / 1000000, why, atomic_load(&fail_mask),
            atomic_load(&n_failed_r), atomic_load(&n_failed_w),
            atomic_load(&n_ok_r), atomic_load(&n_ok_w));
}

static void on_usr(int sig)
{
    atomic_store(&fail_mask, sig == SIGUSR1 ? FAIL_READ | FAIL_WRITE : 0);
    /* logged lazily by the next request (no stdio in a signal handler) */
}

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    memset(st, 0, sizeof(*st));
    if (strcmp(path, "/") == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else if (strcmp(path, "/disk") == 0) {
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        st->st_size = img_size;
        st->st_blksize = 4096;
        st->st_blocks = img_size / 512;
    } else if (strcmp(path, "/ctl") == 0) {
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
    } else {
        return -ENOENT;
    }
    return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    if (strcmp(path, "/") != 0) {
        return -ENOENT;
    }
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    fill(buf, "disk", NULL, 0, 0);
    fill(buf, "ctl", NULL, 0, 0);
    return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
    if (strcmp(path, "/disk") == 0) {
        fi->direct_io = 1;
        return 0;
    }
    if (strcmp(path, "/ctl") == 0) {
        fi->direct_io = 1;
        return 0;
    }
    return -ENOENT;
}

static int last_logged_mask = -1;

static void maybe_log(void)
{
    int m = atomic_load(&fail_mask);
    if (m != last_logged_mask) {
        last_logged_mask = m;
        log_state(m ? "now failing" : "now ok");
    }
}

static int ff_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, "/disk") != 0) {
        return 0;
    }
    maybe_log();
    if (atomic_load(&fail_mask) & FAIL_READ) {
        atomic_fetch_add(&n_failed_r, 1);
        return -EIO;
    }
    if (off >= img_size) {
        return 0;
    }
    if (off + (off_t)size > img_size) {
        size = img_size - off;
    }
    ssize_t r = pread(img_fd, buf, size, off);
    if (r < 0) {
        return -errno;
    }
    atomic_fetch_add(&n_ok_r, 1);
    return r;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, "/ctl") == 0) {
        char cmd[32] = { 0 };
        memcpy(cmd, buf, size < sizeof(cmd) - 1 ? size : sizeof(cmd) - 1);
        if (strncmp(cmd, "fail-read", 9) == 0) {
            atomic_store(&fail_mask, FAIL_READ);
        } else if (strncmp(cmd, "fail-write", 10) == 0) {
            atomic_store(&fail_mask, FAIL_WRITE);
        } else if (strncmp(cmd, "fail", 4) == 0) {
            atomic_store(&fail_mask, FAIL_READ | FAIL_WRITE);
        } else if (strncmp(cmd, "ok", 2) == 0) {
            atomic_store(&fail_mask, 0);
        } else {
            return -EINVAL;
        }
        maybe_log();
        return size;
    }
    if (strcmp(path, "/disk") != 0) {
        return -ENOENT;
    }
    maybe_log();
    if (atomic_load(&fail_mask) & FAIL_WRITE) {
        atomic_fetch_add(&n_failed_w, 1);
        return -EIO;
    }
    if (off >= img_size) {
        return -ENOSPC;
    }
    if (off + (off_t)size > img_size) {
        size = img_size - off;
    }
    ssize_t r = pwrite(img_fd, buf, size, off);
    if (r < 0) {
        return -errno;
    }
    atomic_fetch_add(&n_ok_w, 1);
    return r;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, "/disk") != 0) {
        return 0;
    }
    maybe_log();
    if (atomic_load(&fail_mask) & FAIL_WRITE) {
        atomic_fetch_add(&n_failed_w, 1);
        return -EIO;
    }
    return (datasync ? fdatasync(img_fd) : fsync(img_fd)) < 0 ? -errno : 0;
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    (void)fi;
    (void)size;
    return strcmp(path, "/ctl") == 0 ? 0 : -EPERM;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    const char *fd = getenv("FAILING_FUSE_READY_FD");
    (void)conn;
    (void)cfg;
    if (fd) {
        int n = atoi(fd);
        if (write(n, "ready\n", 6) != 6) {
            perror("failing-fuse: ready fd");
        }
        close(n);
    }
    log_state("mounted");
    return NULL;
}

static void ff_destroy(void *data)
{
    (void)data;
    log_state("exit");
    if (img_fd >= 0) {
        fsync(img_fd);
    }
}

static const struct fuse_operations ops = {
    .getattr = ff_getattr,
    .readdir = ff_readdir,
    .open = ff_open,
    .read = ff_read,
    .write = ff_write,
    .fsync = ff_fsync,
    .truncate = ff_truncate,
    .init = ff_init,
    .destroy = ff_destroy,
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s IMAGE MOUNTPOINT [-f] [fuse options]\n", argv[0]);
        return 2;
    }
    img_fd = open(argv[1], O_RDWR);
    if (img_fd < 0) {
        perror(argv[1]);
        return 1;
    }
    img_size = lseek(img_fd, 0, SEEK_END);

    struct sigaction sa = { .sa_handler = on_usr, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    /* drop IMAGE from argv: fuse sees "prog MOUNTPOINT [opts]" */
    argv[1] = argv[0];
    setvbuf(stderr, NULL, _IOLBF, 0);
    log_state("start");
    return fuse_main(argc - 1, argv + 1, &ops, NULL);
}
