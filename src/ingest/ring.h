/* ring.h - bounded blocking queue of pointers between pipeline threads.
 *
 * push blocks while full (files: nothing dropped); pop blocks while empty. After
 * ms_ring_close() pushes fail and pop drains what is left, then returns NULL.
 * ms_ring_push_drop() is for live input: when full it drops the oldest item, hands it
 * back through *dropped for the caller to free and count, and never blocks. */
#ifndef MS_RING_H
#define MS_RING_H

#include <stddef.h>

typedef struct ms_ring ms_ring;

ms_ring *ms_ring_new(size_t capacity);
void ms_ring_free(ms_ring *r);
/* 0 on success, -1 if the ring was closed. */
int ms_ring_push(ms_ring *r, void *item);
int ms_ring_push_drop(ms_ring *r, void *item, void **dropped);
/* The oldest item, or NULL once closed and empty. */
void *ms_ring_pop(ms_ring *r);
/* Waits for one item as ms_ring_pop does, then takes every item already queued, up to max,
 * into items[] in order: a consumer that works on several at once (a team formatting a
 * batch of reads) takes what has arrived without waiting for more. Returns the count;
 * 0 once closed and empty. */
size_t ms_ring_pop_upto(ms_ring *r, void **items, size_t max);
void ms_ring_close(ms_ring *r);
size_t ms_ring_count(ms_ring *r);

#endif
