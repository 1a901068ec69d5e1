/* test_ring.c - the bounded blocking queue: order and completeness across threads,
 * close semantics, and drop-oldest for live input. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"
#include "test_util.h"

#define N_ITEMS 100000

/* Items are small integers smuggled in pointers; +1 keeps them non-NULL. */
static void *item_of(uintptr_t i) { return (void *)(i + 1); }
static uintptr_t index_of(void *p) { return (uintptr_t)p - 1; }

typedef struct {
    ms_ring *ring;
    uintptr_t first, count; /* producer: pushes [first, first + count) in order */
    int push_failed;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (uintptr_t i = a->first; i < a->first + a->count; i++)
        if (ms_ring_push(a->ring, item_of(i)) != 0) a->push_failed = 1;
    return NULL;
}

static void single_producer_consumer(size_t capacity)
{
    ms_ring *r = ms_ring_new(capacity);
    assert_non_null(r);
    producer_arg a = { r, 0, N_ITEMS, 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &a), 0);
    uintptr_t next = 0;
    for (;;) {
        void *p = ms_ring_pop(r);
        assert_non_null(p);
        assert_int_equal(index_of(p), next); /* in order: none lost, none twice */
        if (++next == N_ITEMS) break;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.push_failed, 0);
    assert_int_equal(ms_ring_count(r), 0);
    ms_ring_close(r);
    assert_null(ms_ring_pop(r));
    ms_ring_free(r);
}

static void test_spsc_capacity_1(void **state) { (void)state; single_producer_consumer(1); }
static void test_spsc_capacity_8(void **state) { (void)state; single_producer_consumer(8); }

/* Several producers and consumers: every item arrives exactly once, and each producer's
 * items reach any one consumer in the order they were pushed. */
#define N_PROD 3
#define N_CONS 3

typedef struct {
    ms_ring *ring;
    unsigned char *seen;           /* [N_PROD * N_ITEMS], shared; each slot written once */
    uintptr_t last[N_PROD];        /* last index seen from each producer, +1 */
    int out_of_order;
    size_t got;
} consumer_arg;

static void *consumer(void *p)
{
    consumer_arg *a = p;
    void *it;
    while ((it = ms_ring_pop(a->ring)) != NULL) {
        uintptr_t i = index_of(it);
        uintptr_t prod = i / N_ITEMS;
        if (i + 1 <= a->last[prod]) a->out_of_order = 1;
        a->last[prod] = i + 1;
        a->seen[i]++;
        a->got++;
    }
    return NULL;
}

static void test_mpmc_none_lost(void **state)
{
    (void)state;
    ms_ring *r = ms_ring_new(8);
    assert_non_null(r);
    unsigned char *seen = calloc(N_PROD * N_ITEMS, 1);
    pthread_t pt[N_PROD], ct[N_CONS];
    producer_arg pa[N_PROD];
    consumer_arg ca[N_CONS];
    memset(ca, 0, sizeof ca);
    for (int c = 0; c < N_CONS; c++) {
        ca[c].ring = r;
        ca[c].seen = seen;
        assert_int_equal(pthread_create(&ct[c], NULL, consumer, &ca[c]), 0);
    }
    for (int p = 0; p < N_PROD; p++) {
        pa[p] = (producer_arg){ r, (uintptr_t)p * N_ITEMS, N_ITEMS, 0 };
        assert_int_equal(pthread_create(&pt[p], NULL, producer, &pa[p]), 0);
    }
    for (int p = 0; p < N_PROD; p++) {
        assert_int_equal(pthread_join(pt[p], NULL), 0);
        assert_int_equal(pa[p].push_failed, 0);
    }
    ms_ring_close(r); /* consumers drain what is left, then see NULL */
    size_t total = 0;
    for (int c = 0; c < N_CONS; c++) {
        assert_int_equal(pthread_join(ct[c], NULL), 0);
        assert_int_equal(ca[c].out_of_order, 0);
        total += ca[c].got;
    }
    assert_int_equal(total, N_PROD * N_ITEMS);
    for (size_t i = 0; i < N_PROD * N_ITEMS; i++)
        if (seen[i] != 1) fail_msg("item %zu seen %d times", i, seen[i]);
    free(seen);
    ms_ring_free(r);
}

/* pop_upto: every item once and in order across a producer thread, never more than max
 * at a time, at least one per call until closed and drained. */
static void upto_consumer(size_t capacity, size_t max)
{
    ms_ring *r = ms_ring_new(capacity);
    assert_non_null(r);
    producer_arg a = { r, 0, N_ITEMS, 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &a), 0);
    void *items[64];
    uintptr_t next = 0;
    size_t calls = 0;
    while (next < N_ITEMS) {
        size_t n = ms_ring_pop_upto(r, items, max);
        assert_true(n >= 1 && n <= max);
        for (size_t k = 0; k < n; k++) assert_int_equal(index_of(items[k]), next++);
        calls++;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.push_failed, 0);
    assert_true(calls >= N_ITEMS / max);
    /* what is queued at close still comes out, then 0 */
    for (uintptr_t i = 0; i < 3; i++) assert_int_equal(ms_ring_push(r, item_of(i)), 0);
    ms_ring_close(r);
    assert_int_equal(ms_ring_pop_upto(r, items, 2), 2);
    assert_int_equal(index_of(items[0]), 0);
    assert_int_equal(index_of(items[1]), 1);
    assert_int_equal(ms_ring_pop_upto(r, items, 64), 1);
    assert_int_equal(index_of(items[0]), 2);
    assert_int_equal(ms_ring_pop_upto(r, items, 64), 0);
    ms_ring_free(r);
}

static void test_pop_upto(void **state)
{
    (void)state;
    upto_consumer(8, 1);
    upto_consumer(8, 5);
    upto_consumer(64, 64);
}

static void test_close_drains(void **state)
{
    (void)state;
    ms_ring *r = ms_ring_new(4);
    for (uintptr_t i = 0; i < 3; i++) assert_int_equal(ms_ring_push(r, item_of(i)), 0);
    ms_ring_close(r);
    assert_int_equal(ms_ring_push(r, item_of(9)), -1);
    void *dropped = item_of(7);
    assert_int_equal(ms_ring_push_drop(r, item_of(9), &dropped), -1);
    assert_null(dropped);
    assert_int_equal(ms_ring_count(r), 3);
    for (uintptr_t i = 0; i < 3; i++) assert_int_equal(index_of(ms_ring_pop(r)), i);
    assert_null(ms_ring_pop(r));
    assert_null(ms_ring_pop(r));
    ms_ring_free(r);
}

static void *pop_once(void *p) { return ms_ring_pop(p); }

static void *push_once(void *p)
{
    return (void *)(intptr_t)ms_ring_push(p, item_of(42));
}

/* A pop blocked on an empty ring, and a push blocked on a full one, both wake on close. */
static void test_close_wakes_blocked(void **state)
{
    (void)state;
    ms_ring *r = ms_ring_new(1);
    pthread_t t;
    void *res = item_of(5);
    assert_int_equal(pthread_create(&t, NULL, pop_once, r), 0);
    usleep(20000); /* let it block; correctness does not depend on this */
    ms_ring_close(r);
    assert_int_equal(pthread_join(t, &res), 0);
    assert_null(res);
    ms_ring_free(r);

    r = ms_ring_new(1);
    assert_int_equal(ms_ring_push(r, item_of(1)), 0);
    assert_int_equal(pthread_create(&t, NULL, push_once, r), 0);
    usleep(20000);
    ms_ring_close(r);
    assert_int_equal(pthread_join(t, &res), 0);
    assert_int_equal((intptr_t)res, -1);
    assert_int_equal(index_of(ms_ring_pop(r)), 1); /* what was there is still drained */
    assert_null(ms_ring_pop(r));
    ms_ring_free(r);
}

static void test_push_drop_oldest(void **state)
{
    (void)state;
    ms_ring *r = ms_ring_new(3);
    void *dropped = item_of(99);
    for (uintptr_t i = 0; i < 3; i++) {
        assert_int_equal(ms_ring_push_drop(r, item_of(i), &dropped), 0);
        assert_null(dropped); /* room left: nothing dropped */
    }
    assert_int_equal(ms_ring_push_drop(r, item_of(3), &dropped), 0);
    assert_int_equal(index_of(dropped), 0); /* the oldest goes */
    assert_int_equal(ms_ring_push_drop(r, item_of(4), &dropped), 0);
    assert_int_equal(index_of(dropped), 1);
    assert_int_equal(ms_ring_count(r), 3);
    for (uintptr_t i = 2; i < 5; i++) assert_int_equal(index_of(ms_ring_pop(r)), i);
    assert_int_equal(ms_ring_count(r), 0);
    ms_ring_free(r);
}

static void test_bad_args(void **state)
{
    (void)state;
    assert_null(ms_ring_new(0));
    ms_ring *r = ms_ring_new(2);
    void *dropped;
    assert_int_equal(ms_ring_push(r, NULL), -1); /* NULL would read as "closed" */
    assert_int_equal(ms_ring_push_drop(r, NULL, &dropped), -1);
    assert_int_equal(ms_ring_count(r), 0);
    ms_ring_free(r);
    ms_ring_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spsc_capacity_1),
        cmocka_unit_test(test_spsc_capacity_8),
        cmocka_unit_test(test_mpmc_none_lost),
        cmocka_unit_test(test_pop_upto),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_close_wakes_blocked),
        cmocka_unit_test(test_push_drop_oldest),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
