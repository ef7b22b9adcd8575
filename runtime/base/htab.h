/*
 * runtime/base/htab.h — an intrusive chained hash table.
 *
 * The engine's active runs and the WebSocket connections (on both threads)
 * are found by key on every event; each embeds an anvil_hnode and the table
 * links those nodes, so a lookup allocates nothing and an entry is removed
 * in O(1) without a search for its slot. The table never owns the entries:
 * it grows its bucket array and frees that, nothing else.
 *
 * Not thread-safe: a table belongs to one thread (or one lock).
 */
#ifndef ANVIL_HTAB_H
#define ANVIL_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The struct that embeds `member`, from a pointer to that member. */
#define ANVIL_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

typedef struct anvil_hnode {
    struct anvil_hnode *next;
    uint64_t hash;
} anvil_hnode;

typedef struct anvil_htab {
    anvil_hnode **buckets;    /* n_buckets slots, a power of two, or NULL */
    size_t n_buckets;
    size_t count;
} anvil_htab;

/* Key equality for anvil_htab_find: does `node` hold `key`? */
typedef bool (*anvil_htab_eq_fn)(const anvil_hnode *node, const void *key);

/* FNV-1a of a NUL-terminated string, and a mix of a 64-bit integer key. */
uint64_t anvil_hash_str(const char *s);
uint64_t anvil_hash_u64(uint64_t x);

/* Link `node` under `hash`, growing the buckets when the table is more
 * than full. The caller guarantees the key is not present. 0, or -1 when
 * out of memory (nothing changed). */
int anvil_htab_insert(anvil_htab *t, anvil_hnode *node, uint64_t hash);

/* The node with this hash whose key eq() accepts, or NULL. */
anvil_hnode *anvil_htab_find(const anvil_htab *t, uint64_t hash, anvil_htab_eq_fn eq,
                             const void *key);

/* Unlink `node`; true when it was in the table. */
bool anvil_htab_remove(anvil_htab *t, anvil_hnode *node);

/* Visit every node, in no particular order. `fn` may remove the node it is
 * given (and no other). */
void anvil_htab_each(anvil_htab *t, void (*fn)(anvil_hnode *node, void *ctx), void *ctx);

/* Free the buckets (not the entries) and empty the table. */
void anvil_htab_clear(anvil_htab *t);

#endif
