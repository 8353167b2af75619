/*
 * libgearman-load: background submits through Debian's libgearman, the way
 * the C and PHP clients our users run send them, so Sprocket's figures can
 * be read against a client that is not our own.
 *
 * Each of C threads owns one gearman_client_st (one connection) and calls
 * gearman_client_do_background() in a loop, one job at a time, with no
 * unique id of its own: libgearman then generates one (a UUID) per job.
 * After the duration the threads stop and the program prints the jobs that
 * got a JOB_CREATED, and jobs per second; with -j, one JSON line in the
 * shape of `sprocket bench --json` (mode submit-bg, window 1), so that
 * bench/compare.sh and bench-chart take its runs like their own.
 *
 *   cc -O2 -o libgearman-load bench/libgearman-load.c -lgearman -lpthread
 *   libgearman-load -h 127.0.0.1 -p 4730 -c 64 -d 3 -s 100 [-f function] [-j]
 *
 * Exit status 1 when any submit failed (the first error is printed).
 */
#include <libgearman/gearman.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static in_port_t port = 4730;
static double duration = 3.0;
static size_t size = 100;
static char function[128];
static char *payload;

static atomic_bool stop;
static atomic_bool failed;
static atomic_ulong done;
static atomic_ulong errors;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *submitter(void *arg)
{
    (void)arg;
    gearman_client_st *client = gearman_client_create(NULL);
    if (client == NULL || gearman_client_add_server(client, host, port) != GEARMAN_SUCCESS) {
        fprintf(stderr, "libgearman-load: cannot set up a client for %s:%u\n", host, (unsigned)port);
        atomic_store(&failed, true);
        return NULL;
    }
    unsigned long mine = 0;
    char handle[GEARMAN_JOB_HANDLE_SIZE];
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        gearman_return_t rc = gearman_client_do_background(client, function, NULL, payload, size, handle);
        if (rc != GEARMAN_SUCCESS) {
            atomic_fetch_add(&errors, 1);
            if (!atomic_exchange(&failed, true)) {
                fprintf(stderr, "libgearman-load: submit failed: %s\n", gearman_client_error(client));
            }
            break;
        }
        mine++;
    }
    atomic_fetch_add(&done, mine);
    gearman_client_free(client);
    return NULL;
}

int main(int argc, char **argv)
{
    int conns = 4;
    bool json = false;
    int opt;
    snprintf(function, sizeof function, "libgearman-load-%ld", (long)getpid());
    while ((opt = getopt(argc, argv, "h:p:c:d:s:f:j")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = (in_port_t)atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'f': snprintf(function, sizeof function, "%s", optarg); break;
        case 'j': json = true; break;
        default:
            fprintf(stderr, "usage: %s [-h host] [-p port] [-c conns] [-d seconds] [-s bytes] [-f function] [-j]\n", argv[0]);
            return 2;
        }
    }
    if (conns < 1 || duration <= 0) {
        fprintf(stderr, "libgearman-load: -c must be at least 1 and -d positive\n");
        return 2;
    }
    payload = malloc(size ? size : 1);
    if (payload == NULL) {
        return 2;
    }
    memset(payload, 'x', size);

    pthread_t *threads = calloc((size_t)conns, sizeof *threads);
    if (threads == NULL) {
        return 2;
    }
    double started = now();
    for (int i = 0; i < conns; i++) {
        if (pthread_create(&threads[i], NULL, submitter, NULL) != 0) {
            fprintf(stderr, "libgearman-load: cannot start thread %d\n", i);
            return 2;
        }
    }
    struct timespec nap = {(time_t)duration, (long)((duration - (double)(time_t)duration) * 1e9)};
    nanosleep(&nap, NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < conns; i++) {
        pthread_join(threads[i], NULL);
    }
    double elapsed = now() - started;
    unsigned long total = atomic_load(&done);
    if (json) {
        printf("{\"mode\":\"submit-bg\",\"server\":\"%s:%u\",\"connections\":%d,\"workers\":0,"
               "\"size\":%zu,\"priority\":\"normal\",\"unique\":true,\"window\":1,\"jobs_requested\":0,"
               "\"duration_limit_s\":%.3f,\"elapsed_s\":%.6f,\"jobs\":%lu,\"throughput\":%.1f,"
               "\"errors\":%lu,\"latency\":null,\"details\":{}}\n",
               host, (unsigned)port, conns, size, duration, elapsed, total, (double)total / elapsed,
               atomic_load(&errors));
    } else {
        printf("jobs %lu seconds %.3f jobs/s %.0f errors %lu\n", total, elapsed, (double)total / elapsed,
               atomic_load(&errors));
    }
    return atomic_load(&failed) ? 1 : 0;
}
