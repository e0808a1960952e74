/*
 * e2e-workload: guest side of the werror/rerror=retry end-to-end tests.
 *
 * Runs inside the test guest (static binary in the initramfs).  On an
 * already mounted filesystem it writes files continuously, one fsync per
 * file; every file carries its own sequence number and checksum.  It stops
 * when "E2E-STOP" arrives on stdin (the serial console), on SIGTERM/SIGINT,
 * or after the safety time limit.  Then it syncs, drops the page cache and
 * re-reads every file whose fsync succeeded, and prints one line
 *
 *   E2E-RESULT written=N verified=N bad=N write_errors=N read_errors=N
 *              max_stall_ms=N max_read_ms=N fs_rw=0|1 kernel_io_errors=N ...
 *
 * Other lines, all prefixed "E2E-", with t=<ms since start> (guest clock):
 *   E2E-START, E2E-PROGRESS (periodic; busy_ms = age of the operation in
 *   flight, so a stall is visible while it lasts), E2E-STALL (an operation
 *   that took >= 1 s, printed when it completes), E2E-WERR / E2E-RERR (first
 *   errors, rate limited), E2E-VERIFY-BAD, E2E-KMSG (kernel error lines).
 *
 * Optional reader (-d DEV -r MS): O_DIRECT 4 KiB reads of the raw block
 * device every MS ms; reads bypass the page cache and ext4, so with
 * rerror=report they fail fast while writes (werror=retry) hang.
 *
 * -j N: N writer threads, thread i pinned to CPU i % ncpus, writing the
 * files i, i+N, i+2N ... (so that every virtqueue of a multiqueue disk
 * carries requests).
 *
 * -R: read-heavy.  Write the files first (-n of them), then until stopped:
 * drop the page cache and read and verify every file, again and again
 * (E2E-READPHASE once, E2E-READPASS per pass; busy_ms is then the age of
 * the read in flight).  Mount with noatime so that reads cause no writes.
 *
 * -P PREFIX: print PREFIX-PROGRESS, PREFIX-RESULT ... instead of E2E-...
 * (a second instance on a second disk).
 *
 * -D: write into a new directory e2e/bNNNN (the first free number), so
 * that the files of earlier boots on the same disk stay as they were;
 * -A: print "E2E-ACK d=DIR s=SEQ" once a file's fsync succeeded.  The
 * host collects these and, after the guest is gone, checks every
 * acknowledged file of every boot with
 *
 *   e2e-workload -V ACKLIST -m MOUNTPOINT     (ACKLIST: "DIR SEQ" lines)
 *
 * which prints "E2E-HOSTVERIFY checked=N ok=N missing=N bad=N" and exits
 * 0 only if every file verified.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define HDR 64
#define MAX_FILES 200000
#define MAX_WRITERS 16

static const char *mnt = "/mnt";
static const char *dev;
static long max_secs = 300;
static long min_kb = 1, max_kb = 8;
static long read_ms;
static long progress_ms = 500;
static long max_files = 8000;
static long pace_ms = 20;
static long n_writers = 1;
static int read_mode;
static const char *prefix = "E2E";

static atomic_int stop;
static atomic_long busy_since[MAX_WRITERS];     /* ms, 0 = idle */
static atomic_long rbusy_since;
static atomic_long n_written, n_werr, n_rerr, n_reads;
static atomic_long max_stall, max_read;
static atomic_long first_werr_t = -1, first_rerr_t = -1;
static atomic_long last_write_t = -1;
static atomic_long n_seq;          /* files attempted: highest seq + 1 */
static atomic_long n_read_bad, n_passes;
static long t0_ms;
static unsigned char *acked;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long rel_ms(void)
{
    return now_ms() - t0_ms;
}

/* One write(2) per line so lines from different threads never mix. */
static void out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    int pl = 0;
    if (strncmp(fmt, "E2E", 3) == 0) {
        pl = snprintf(buf, 32, "%s", prefix);
        fmt += 3;
    }
    va_start(ap, fmt);
    n = vsnprintf(buf + pl, sizeof(buf) - 1 - pl, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        n += pl;
    }
    if (n < 0) {
        return;
    }
    if (n > (int)sizeof(buf) - 2) {
        n = sizeof(buf) - 2;
    }
    buf[n++] = '\n';
    pthread_mutex_lock(&out_lock);
    for (int off = 0; off < n;) {
        ssize_t w = write(1, buf + off, n - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        off += w;
    }
    pthread_mutex_unlock(&out_lock);
}

static void atomic_max(atomic_long *a, long v)
{
    long cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static size_t file_len(long seq)
{
    uint64_t x = (uint64_t)seq * 2654435761ULL + 12345;
    long span = (max_kb - min_kb) * 1024 + 1;
    return min_kb * 1024 + (x % span);
}

static void fill(unsigned char *p, size_t n, long seq)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seq << 17) ^ (uint64_t)seq;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

/* header + payload for seq into buf (must hold HDR + max_kb KiB) */
static size_t make_file(unsigned char *buf, long seq)
{
    size_t len = file_len(seq);
    fill(buf + HDR, len, seq);
    memset(buf, ' ', HDR);
    int n = snprintf((char *)buf, HDR, "E2E seq=%08ld len=%zu sum=%016" PRIx64,
                     seq, len, fnv1a(buf + HDR, len));
    buf[n] = ' ';
    buf[HDR - 1] = '\n';
    return HDR + len;
}

static char subdir[64] = "e2e";     /* -D: e2e/bNNNN, a new one per start */
static int print_acks;              /* -A: E2E-ACK per acknowledged file */

static void path_of(char *p, size_t n, long seq)
{
    snprintf(p, n, "%s/%s/f%06ld", mnt, subdir, seq);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= w;
    }
    return 0;
}

static void *stdin_thread(void *arg)
{
    char line[256];
    (void)arg;
    while (fgets(line, sizeof(line), stdin)) {
        if (strstr(line, "E2E-STOP")) {
            out("E2E-STOPPING t=%ld", rel_ms());
            atomic_store(&stop, 1);
            break;
        }
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop, 1);
}

static void *progress_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        usleep(progress_ms * 1000);
        long t = rel_ms();
        long busy = 0;
        for (int i = 0; i < n_writers; i++) {
            long b = atomic_load(&busy_since[i]);
            if (b && t - b > busy) {
                busy = t - b;
            }
        }
        long rb = atomic_load(&rbusy_since);
        out("E2E-PROGRESS t=%ld written=%ld werr=%ld reads=%ld rerr=%ld busy_ms=%ld rbusy_ms=%ld",
            t, atomic_load(&n_written), atomic_load(&n_werr),
            atomic_load(&n_reads), atomic_load(&n_rerr), busy, rb ? t - rb : 0);
        if (max_secs && t > max_secs * 1000) {
            out("E2E-TIMELIMIT t=%ld", t);
            atomic_store(&stop, 1);
        }
    }
    return NULL;
}

static void *reader_thread(void *arg)
{
    (void)arg;
    int fd = open(dev, O_RDONLY | O_DIRECT);
    if (fd < 0) {
        out("E2E-INFO reader open %s failed errno=%d", dev, errno);
        return NULL;
    }
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) < 0 || size < 8192) {
        size = 1 << 20;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, 4096)) {
        close(fd);
        return NULL;
    }
    uint64_t x = 88172645463325252ULL;
    while (!atomic_load(&stop)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off_t off = (off_t)((x % (size / 4096)) * 4096);
        long t1 = rel_ms();
        atomic_store(&rbusy_since, t1 ? t1 : 1);
        ssize_t r = pread(fd, buf, 4096, off);
        int e = errno;
        long t2 = rel_ms();
        atomic_store(&rbusy_since, 0);
        atomic_max(&max_read, t2 - t1);
        atomic_fetch_add(&n_reads, 1);
        if (r != 4096) {
            long n = atomic_fetch_add(&n_rerr, 1) + 1;
            long f = -1;
            atomic_compare_exchange_strong(&first_rerr_t, &f, t2);
            if (n <= 10 || n % 100 == 0) {
                out("E2E-RERR t=%ld n=%ld ms=%ld errno=%d", t2, n, t2 - t1,
                    r < 0 ? e : 0);
            }
        } else if (t2 - t1 >= 1000) {
            out("E2E-RSTALL t=%ld ms=%ld", t2, t2 - t1);
        }
        usleep(read_ms * 1000);
    }
    close(fd);
    free(buf);
    return NULL;
}

/* Count kernel error lines logged so far (reads /dev/kmsg from its start);
 * hung-task warnings ("task ... blocked for more than N seconds") are
 * counted apart: they are not errors, the guest waits. */
static long kernel_errors(long *remount_ro, long *fs_errors, long *hung)
{
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    long n = 0, shown = 0;
    char rec[2048];

    *remount_ro = 0;
    *fs_errors = 0;
    *hung = 0;
    if (fd < 0) {
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, rec, sizeof(rec) - 1);
        if (r < 0) {
            if (errno == EPIPE || errno == EINTR) {
                continue;       /* overwritten records: keep reading */
            }
            break;              /* EAGAIN: end of buffer */
        }
        rec[r] = 0;
        char *msg = strchr(rec, ';');
        msg = msg ? msg + 1 : rec;
        char *nl = strchr(msg, '\n');
        if (nl) {
            *nl = 0;
        }
        if (strstr(msg, "blocked for more than")) {
            (*hung)++;
            continue;
        }
        int ro = strstr(msg, "Remounting filesystem read-only") != NULL;
        int fs = strstr(msg, "EXT4-fs error") || ro || strstr(msg, "Aborting journal") ||
                 strstr(msg, "Detected aborted journal") || strstr(msg, "EXT4-fs warning");
        if (strstr(msg, "I/O error") || fs) {
            n++;
            *fs_errors += fs;
            *remount_ro += ro;
            if (shown++ < 5) {
                out("E2E-KMSG %.200s", msg);
            }
        }
    }
    close(fd);
    return n;
}

static int fs_is_rw(void)
{
    FILE *f = fopen("/proc/mounts", "r");
    char d[256], m[256], t[64], o[512];
    int rw = -1;
    if (!f) {
        return -1;
    }
    while (fscanf(f, "%255s %255s %63s %511s %*d %*d", d, m, t, o) == 4) {
        if (strcmp(m, mnt) == 0) {
            rw = strncmp(o, "rw", 2) == 0 && (o[2] == ',' || o[2] == 0);
        }
    }
    fclose(f);
    return rw;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: e2e-workload [-m MNT] [-d DEV -r READ_MS] [-t MAX_SECS]\n"
            "                    [-k MIN_KB] [-K MAX_KB] [-n MAX_FILES] [-p PROGRESS_MS]\n"
            "                    [-i PACE_MS] [-j WRITERS] [-R] [-P PREFIX] [-D] [-A]\n"
            "       e2e-workload -V ACKLIST -m MNT\n");
    exit(2);
}

/* Read file seq back and compare it with what was written.  NULL if it
 * verifies, else why not (*err: errno of a failed open/read, else 0). */
static const char *verify_file(long s, unsigned char *buf, unsigned char *rbuf, int *err)
{
    char path[512];
    size_t want = make_file(buf, s);
    ssize_t got = -1;
    const char *why = NULL;

    *err = 0;
    path_of(path, sizeof(path), s);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        *err = errno;
        return "open";
    }
    size_t tot = 0;
    for (;;) {
        ssize_t r = read(fd, rbuf + tot, want + 1 - tot);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            *err = errno;
        }
        if (r <= 0) {
            got = r < 0 ? -1 : (ssize_t)tot;
            break;
        }
        tot += r;
        if (tot == want + 1) {
            got = tot;
            break;
        }
    }
    close(fd);
    if (got < 0) {
        why = "read";
    } else if ((size_t)got != want) {
        why = "length";
    } else if (memcmp(rbuf, buf, HDR) != 0) {
        why = "header";
    } else if (memcmp(rbuf + HDR, buf + HDR, want - HDR) != 0) {
        why = "payload";
    }
    return why;
}

static void drop_caches(void)
{
    int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (dc >= 0) {
        if (write(dc, "3\n", 2) != 2) {
            out("E2E-INFO drop_caches failed errno=%d", errno);
        }
        close(dc);
    }
}

static void *writer_thread(void *arg)
{
    long id = (long)arg;
    unsigned char *buf = malloc(HDR + max_kb * 1024);
    char path[512];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    if (!buf) {
        return NULL;
    }
    if (n_writers > 1 && ncpu > 1) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(id % ncpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    long seq;
    for (seq = id; seq < max_files && !atomic_load(&stop); seq += n_writers) {
        size_t n = make_file(buf, seq);
        const char *op = "open";
        int err = 0;
        long t1 = rel_ms();
        atomic_store(&busy_since[id], t1);
        atomic_max(&n_seq, seq + 1);
        path_of(path, sizeof(path), seq);
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0) {
            err = errno;
        } else {
            if (write_all(fd, buf, n) < 0) {
                op = "write";
                err = errno;
            } else if (fsync(fd) < 0) {
                op = "fsync";
                err = errno;
            }
            if (close(fd) < 0 && !err) {
                op = "close";
                err = errno;
            }
        }
        long t2 = rel_ms();
        atomic_store(&busy_since[id], 0);
        atomic_max(&max_stall, t2 - t1);
        if (err) {
            long k = atomic_fetch_add(&n_werr, 1) + 1;
            long f = -1;
            atomic_compare_exchange_strong(&first_werr_t, &f, t2);
            if (k <= 10 || k % 100 == 0) {
                out("E2E-WERR t=%ld n=%ld seq=%ld op=%s errno=%d (%s) ms=%ld", t2, k, seq,
                    op, err, strerror(err), t2 - t1);
            }
            usleep(100 * 1000);   /* a read-only fs fails at once: do not spin */
        } else {
            acked[seq] = 1;
            atomic_fetch_add(&n_written, 1);
            atomic_store(&last_write_t, t2);
            if (print_acks) {
                out("E2E-ACK d=%s s=%ld", subdir, seq);
            }
        }
        if (t2 - t1 >= 1000) {
            out("E2E-STALL t=%ld start=%ld ms=%ld seq=%ld err=%d", t2, t1, t2 - t1, seq, err);
        }
        if (pace_ms > 0) {
            usleep(pace_ms * 1000);
        }
    }
    free(buf);
    return NULL;
}

/* -R: read and verify every acknowledged file, page cache dropped before
 * each pass, until stopped */
static void read_phase(unsigned char *buf, unsigned char *rbuf)
{
    long nfiles = atomic_load(&n_seq);

    out("E2E-READPHASE t=%ld files=%ld", rel_ms(), atomic_load(&n_written));
    while (!atomic_load(&stop)) {
        drop_caches();
        long bad = 0, errs = 0;
        for (long s = 0; s < nfiles && !atomic_load(&stop); s++) {
            int err;
            if (!acked[s]) {
                continue;
            }
            long t1 = rel_ms();
            atomic_store(&busy_since[0], t1);
            const char *why = verify_file(s, buf, rbuf, &err);
            long t2 = rel_ms();
            atomic_store(&busy_since[0], 0);
            atomic_max(&max_read, t2 - t1);
            atomic_fetch_add(&n_reads, 1);
            if (why && err) {
                long n = atomic_fetch_add(&n_rerr, 1) + 1;
                long f = -1;
                errs++;
                atomic_compare_exchange_strong(&first_rerr_t, &f, t2);
                if (n <= 10 || n % 100 == 0) {
                    out("E2E-RERR t=%ld n=%ld seq=%ld op=%s ms=%ld errno=%d", t2, n, s,
                        why, t2 - t1, err);
                }
            } else if (why) {
                bad++;
                if (atomic_fetch_add(&n_read_bad, 1) < 10) {
                    out("E2E-READ-BAD seq=%ld why=%s", s, why);
                }
            }
            if (t2 - t1 >= 1000) {
                out("E2E-RSTALL t=%ld ms=%ld seq=%ld", t2, t2 - t1, s);
            }
        }
        long p = atomic_fetch_add(&n_passes, 1) + 1;
        out("E2E-READPASS t=%ld n=%ld bad=%ld errors=%ld", rel_ms(), p, bad, errs);
    }
}

/* -V: on the host, after the guest is gone: verify every file of ACKLIST
 * ("DIR SEQ" per line, as the guest acknowledged them) under mnt */
static int host_verify(const char *list, unsigned char *buf, unsigned char *rbuf)
{
    FILE *f = fopen(list, "r");
    char dir[64];
    long seq, checked = 0, ok = 0, missing = 0, bad = 0;

    if (!f) {
        perror(list);
        return 2;
    }
    while (fscanf(f, "%63s %ld", dir, &seq) == 2) {
        int err;
        if (seq < 0 || seq >= max_files) {
            bad++;
            continue;
        }
        snprintf(subdir, sizeof(subdir), "%s", dir);
        checked++;
        const char *why = verify_file(seq, buf, rbuf, &err);
        if (!why) {
            ok++;
        } else {
            if (strcmp(why, "open") == 0 && err == ENOENT) {
                missing++;
            } else {
                bad++;
            }
            if (missing + bad <= 10) {
                out("E2E-HOSTVERIFY-BAD d=%s s=%ld why=%s errno=%d", dir, seq, why, err);
            }
        }
    }
    fclose(f);
    out("E2E-HOSTVERIFY checked=%ld ok=%ld missing=%ld bad=%ld", checked, ok, missing, bad);
    return checked == ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int c;
    const char *verify_list = NULL;
    int new_dir = 0;
    while ((c = getopt(argc, argv, "m:d:r:t:k:K:n:p:i:j:RP:DAV:")) != -1) {
        switch (c) {
        case 'm': mnt = optarg; break;
        case 'd': dev = optarg; break;
        case 'r': read_ms = atol(optarg); break;
        case 't': max_secs = atol(optarg); break;
        case 'k': min_kb = atol(optarg); break;
        case 'K': max_kb = atol(optarg); break;
        case 'n': max_files = atol(optarg); break;
        case 'p': progress_ms = atol(optarg); break;
        case 'i': pace_ms = atol(optarg); break;
        case 'j': n_writers = atol(optarg); break;
        case 'R': read_mode = 1; break;
        case 'P': prefix = optarg; break;
        case 'D': new_dir = 1; break;
        case 'A': print_acks = 1; break;
        case 'V': verify_list = optarg; break;
        default: usage();
        }
    }
    if (min_kb < 1 || max_kb < min_kb || max_files < 1 || max_files > MAX_FILES ||
        progress_ms < 10 || n_writers < 1 || n_writers > MAX_WRITERS ||
        strlen(prefix) > 16 || (read_mode && n_writers != 1)) {
        usage();
    }
    t0_ms = now_ms() - 1;   /* so that rel_ms() > 0: 0 means idle */
    acked = calloc(max_files, 1);
    unsigned char *buf = malloc(HDR + max_kb * 1024);
    unsigned char *rbuf = malloc(HDR + max_kb * 1024 + 1);
    char path[512];
    if (!acked || !buf || !rbuf) {
        return 1;
    }
    if (verify_list) {
        return host_verify(verify_list, buf, rbuf);
    }

    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    snprintf(path, sizeof(path), "%s/e2e", mnt);
    if (new_dir && (mkdir(path, 0755) == 0 || errno == EEXIST)) {
        for (int i = 0; i < 10000; i++) {
            snprintf(subdir, sizeof(subdir), "e2e/b%04d", i);
            snprintf(path, sizeof(path), "%s/%s", mnt, subdir);
            if (mkdir(path, 0755) == 0 || errno != EEXIST) {
                break;
            }
        }
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        out("E2E-RESULT written=0 verified=0 bad=0 write_errors=1 read_errors=0 "
            "max_stall_ms=0 max_read_ms=0 fs_rw=%d kernel_io_errors=0 setup_failed=1",
            fs_is_rw());
        return 1;
    }

    pthread_t th_in, th_prog, th_rd, th_wr[MAX_WRITERS];
    pthread_create(&th_in, NULL, stdin_thread, NULL);
    pthread_detach(th_in);
    pthread_create(&th_prog, NULL, progress_thread, NULL);
    int have_reader = dev && read_ms > 0;
    if (have_reader) {
        pthread_create(&th_rd, NULL, reader_thread, NULL);
    }
    out("E2E-START t=%ld mnt=%s reader=%s read_ms=%ld max_secs=%ld writers=%ld mode=%s dir=%s",
        rel_ms(), mnt, have_reader ? dev : "-", read_ms, max_secs, n_writers,
        read_mode ? "read" : "write", subdir);

    for (long i = 0; i < n_writers; i++) {
        pthread_create(&th_wr[i], NULL, writer_thread, (void *)i);
    }
    for (long i = 0; i < n_writers; i++) {
        pthread_join(th_wr[i], NULL);
    }
    if (read_mode && !atomic_load(&stop)) {
        sync();
        read_phase(buf, rbuf);
    } else if (!atomic_load(&stop)) {
        out("E2E-INFO max_files=%ld reached t=%ld", max_files, rel_ms());
        while (!atomic_load(&stop)) {
            usleep(100 * 1000);
        }
    }
    atomic_store(&stop, 1);
    pthread_join(th_prog, NULL);
    if (have_reader) {
        pthread_join(th_rd, NULL);
    }

    /* can the filesystem still take a write? (an aborted journal leaves
     * "rw" in /proc/mounts but fails every write with EROFS) */
    int fs_writable = 0, probe_errno = 0;
    snprintf(path, sizeof(path), "%s/%s/probe", mnt, subdir);
    int pfd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (pfd >= 0) {
        fs_writable = write_all(pfd, buf, 4096) == 0 && fsync(pfd) == 0;
        probe_errno = fs_writable ? 0 : errno;
        close(pfd);
    } else {
        probe_errno = errno;
    }

    /* verify */
    out("E2E-VERIFY t=%ld files=%ld fs_writable=%d probe_errno=%d", rel_ms(),
        atomic_load(&n_written), fs_writable, probe_errno);
    sync();
    drop_caches();
    long verified = 0, bad = 0, nfiles = atomic_load(&n_seq);
    long long vbytes = 0;
    for (long s = 0; s < nfiles; s++) {
        int err;
        if (!acked[s]) {
            continue;
        }
        const char *why = verify_file(s, buf, rbuf, &err);
        if (why) {
            bad++;
            if (bad <= 10) {
                out("E2E-VERIFY-BAD seq=%ld why=%s errno=%d", s, why, err);
            }
        } else {
            verified++;
            vbytes += make_file(buf, s);
        }
    }
    long ro, fserr, hung;
    long kerr = kernel_errors(&ro, &fserr, &hung);
    out("E2E-RESULT written=%ld verified=%ld bad=%ld write_errors=%ld read_errors=%ld "
        "reads=%ld max_stall_ms=%ld max_read_ms=%ld fs_rw=%d fs_writable=%d kernel_io_errors=%ld "
        "fs_errors=%ld remount_ro=%ld verified_bytes=%lld first_werr_t=%ld first_rerr_t=%ld "
        "last_write_t=%ld hung_tasks=%ld read_bad=%ld read_passes=%ld writers=%ld t=%ld",
        atomic_load(&n_written), verified, bad, atomic_load(&n_werr),
        atomic_load(&n_rerr), atomic_load(&n_reads), atomic_load(&max_stall),
        atomic_load(&max_read), fs_is_rw(), fs_writable, kerr, fserr, ro, vbytes,
        atomic_load(&first_werr_t), atomic_load(&first_rerr_t), atomic_load(&last_write_t),
        hung, atomic_load(&n_read_bad), atomic_load(&n_passes), n_writers, rel_ms());
    return 0;
}
