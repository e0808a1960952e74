/*
 * bench-io: the benchmark guest's workload.  Keeps DEPTH O_DIRECT requests
 * of 4 KiB in flight on each of the given block devices (Linux native AIO,
 * one thread), each slot waiting PACE ms after its request completed before
 * it submits the next one, and prints a heartbeat line every HB ms:
 *
 *   BIO-HB t=<ms since start> done=<n> err=<n> inflight=<n> paused=<0|1>
 *   BIO-ERR t=<ms> dev=<i> slot=<j> res=<negative errno>     (each failure)
 *
 * Console input: 'p' pauses (in-flight requests complete, no new ones),
 * 'g' goes on.  Statically linked, no libaio: raw system calls.
 *
 * usage: bench-io [-w] [-d DEPTH] [-p PACE_MS] [-h HB_MS] [-s SPAN_MB] DEV...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BS 4096

struct slot {
    struct iocb cb;
    int dev, idx, busy;
    int64_t due;                /* ms: next submission */
    void *buf;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    int write_mode = 0, depth = 16, pace = 10, hb = 100, span_mb = 64, c;
    while ((c = getopt(argc, argv, "wd:p:h:s:")) != -1) {
        switch (c) {
        case 'w': write_mode = 1; break;
        case 'd': depth = atoi(optarg); break;
        case 'p': pace = atoi(optarg); break;
        case 'h': hb = atoi(optarg); break;
        case 's': span_mb = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench-io [-w] [-d DEPTH] [-p PACE_MS] [-h HB_MS] "
                    "[-s SPAN_MB] DEV...\n");
            return 2;
        }
    }
    int ndev = argc - optind;
    if (ndev < 1 || depth < 1) {
        fprintf(stderr, "bench-io: no device\n");
        return 2;
    }
    int *fds = calloc(ndev, sizeof(int));
    for (int i = 0; i < ndev; i++) {
        fds[i] = open(argv[optind + i], (write_mode ? O_RDWR : O_RDONLY) | O_DIRECT);
        if (fds[i] < 0) {
            printf("BIO-FATAL open %s: %s\n", argv[optind + i], strerror(errno));
            return 1;
        }
    }
    int n = ndev * depth;
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, n, &ctx) < 0) {
        printf("BIO-FATAL io_setup(%d): %s\n", n, strerror(errno));
        return 1;
    }
    struct slot *s = calloc(n, sizeof(*s));
    struct io_event *ev = calloc(n, sizeof(*ev));
    struct iocb **one = calloc(1, sizeof(*one));
    uint64_t span = (uint64_t)span_mb << 20;
    for (int i = 0; i < n; i++) {
        s[i].dev = i / depth;
        s[i].idx = i % depth;
        if (posix_memalign(&s[i].buf, BS, BS)) {
            return 1;
        }
        memset(s[i].buf, 0x5a, BS);
    }
    int64_t t0 = now_ms(), next_hb = t0;
    uint64_t done = 0, errs = 0, seq = 0;
    int inflight = 0, paused = 0;
    fcntl(0, F_SETFL, O_NONBLOCK);
    printf("BIO-START devs=%d depth=%d pace=%d write=%d\n", ndev, depth, pace, write_mode);
    fflush(stdout);
    for (;;) {
        int64_t t = now_ms();
        int64_t wake = next_hb;
        if (!paused) {
            for (int i = 0; i < n; i++) {
                if (s[i].busy) {
                    continue;
                }
                if (s[i].due > t) {
                    if (s[i].due < wake) {
                        wake = s[i].due;
                    }
                    continue;
                }
                memset(&s[i].cb, 0, sizeof(s[i].cb));
                s[i].cb.aio_data = i;
                s[i].cb.aio_fildes = fds[s[i].dev];
                s[i].cb.aio_lio_opcode = write_mode ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
                s[i].cb.aio_buf = (uintptr_t)s[i].buf;
                s[i].cb.aio_nbytes = BS;
                /* distinct offsets per slot, moving on with every request */
                s[i].cb.aio_offset = ((seq++ * 7919 + (uint64_t)i * BS) * BS) % span;
                s[i].cb.aio_offset -= s[i].cb.aio_offset % BS;
                one[0] = &s[i].cb;
                if (syscall(SYS_io_submit, ctx, 1, one) != 1) {
                    printf("BIO-ERR t=%lld dev=%d slot=%d res=%d submit\n",
                           (long long)(t - t0), s[i].dev, s[i].idx, -errno);
                    errs++;
                    s[i].due = t + 100;
                    continue;
                }
                s[i].busy = 1;
                inflight++;
            }
        }
        int64_t wait = wake - now_ms();
        if (wait < 0) {
            wait = 0;
        }
        struct timespec to = { wait / 1000, (wait % 1000) * 1000000 };
        /* min_nr 1: block until a completion or the timeout (never spin) */
        long got = syscall(SYS_io_getevents, ctx, 1, n, ev, &to);
        if (got < 0) {
            got = 0;
        }
        t = now_ms();
        for (long k = 0; k < got; k++) {
            struct slot *sl = &s[ev[k].data];
            sl->busy = 0;
            inflight--;
            done++;
            if (ev[k].res != BS) {
                errs++;
                printf("BIO-ERR t=%lld dev=%d slot=%d res=%lld\n", (long long)(t - t0),
                       sl->dev, sl->idx, (long long)ev[k].res);
            }
            sl->due = t + pace;
        }
        char cmd[64];
        ssize_t r = read(0, cmd, sizeof(cmd));
        for (ssize_t k = 0; k < r; k++) {
            if (cmd[k] == 'p') {
                paused = 1;
            } else if (cmd[k] == 'g') {
                paused = 0;
            }
        }
        if (t >= next_hb) {
            printf("BIO-HB t=%lld done=%llu err=%llu inflight=%d paused=%d\n",
                   (long long)(t - t0), (unsigned long long)done,
                   (unsigned long long)errs, inflight, paused);
            fflush(stdout);
            next_hb += hb;
            if (next_hb < t) {
                next_hb = t + hb;
            }
        }
        fflush(stdout);
    }
}
