/* ring.c - bounded blocking queue of pointers (one mutex, two condition variables).
 *
 * Items live in a circular array: slot[(head + i) % cap] for i in [0, count). NULL is
 * not a valid item, since pop returns NULL to mean "closed and drained"; pushing one
 * fails with -1. */
#include "ring.h"

#include <pthread.h>
#include <stdlib.h>

struct ms_ring {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;  /* signalled on push and close */
    pthread_cond_t not_full;   /* signalled on pop and close */
    void **slot;               /* [cap] */
    size_t cap, head, count;
    int closed;
};

ms_ring *ms_ring_new(size_t capacity)
{
    if (capacity == 0) return NULL;
    ms_ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->slot = calloc(capacity, sizeof *r->slot);
    if (!r->slot) goto fail_slot;
    if (pthread_mutex_init(&r->mu, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&r->not_empty, NULL) != 0) goto fail_ne;
    if (pthread_cond_init(&r->not_full, NULL) != 0) goto fail_nf;
    r->cap = capacity;
    return r;
fail_nf:
    pthread_cond_destroy(&r->not_empty);
fail_ne:
    pthread_mutex_destroy(&r->mu);
fail_mu:
    free(r->slot);
fail_slot:
    free(r);
    return NULL;
}

void ms_ring_free(ms_ring *r)
{
    if (!r) return;
    pthread_cond_destroy(&r->not_full);
    pthread_cond_destroy(&r->not_empty);
    pthread_mutex_destroy(&r->mu);
    free(r->slot);
    free(r);
}

/* Both helpers run with the mutex held. */
static void put_locked(ms_ring *r, void *item)
{
    r->slot[(r->head + r->count) % r->cap] = item;
    r->count++;
    pthread_cond_signal(&r->not_empty);
}

static void *take_locked(ms_ring *r)
{
    void *item = r->slot[r->head];
    r->slot[r->head] = NULL;
    r->head = (r->head + 1) % r->cap;
    r->count--;
    pthread_cond_signal(&r->not_full);
    return item;
}

int ms_ring_push(ms_ring *r, void *item)
{
    if (!item) return -1;
    pthread_mutex_lock(&r->mu);
    while (r->count == r->cap && !r->closed) pthread_cond_wait(&r->not_full, &r->mu);
    int rc = -1;
    if (!r->closed) {
        put_locked(r, item);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int ms_ring_push_drop(ms_ring *r, void *item, void **dropped)
{
    *dropped = NULL;
    if (!item) return -1;
    pthread_mutex_lock(&r->mu);
    int rc = -1;
    if (!r->closed) {
        if (r->count == r->cap) *dropped = take_locked(r);
        put_locked(r, item);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void *ms_ring_pop(ms_ring *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == 0 && !r->closed) pthread_cond_wait(&r->not_empty, &r->mu);
    void *item = r->count > 0 ? take_locked(r) : NULL;
    pthread_mutex_unlock(&r->mu);
    return item;
}

size_t ms_ring_pop_upto(ms_ring *r, void **items, size_t max)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == 0 && !r->closed) pthread_cond_wait(&r->not_empty, &r->mu);
    size_t n = 0;
    while (n < max && r->count > 0) items[n++] = take_locked(r);
    pthread_mutex_unlock(&r->mu);
    return n;
}

void ms_ring_close(ms_ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_cond_broadcast(&r->not_empty);
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
}

size_t ms_ring_count(ms_ring *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}
