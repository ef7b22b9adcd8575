/*
 * runtime/base/htab.c — the intrusive hash table (htab.h).
 */
#include <assert.h>
#include <stdlib.h>

#include "htab.h"

#define FIRST_BUCKETS 64

uint64_t anvil_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uint64_t anvil_hash_u64(uint64_t x)
{
    /* splitmix64's finaliser: sequential ids spread over every bucket. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static size_t slot(const anvil_htab *t, uint64_t hash)
{
    return (size_t)hash & (t->n_buckets - 1);
}

static int grow(anvil_htab *t)
{
    size_t nb = t->n_buckets ? t->n_buckets * 2 : FIRST_BUCKETS;
    anvil_hnode **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (anvil_hnode *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            size_t k = (size_t)n->hash & (nb - 1);
            n->next = b[k];
            b[k] = n;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = nb;
    return 0;
}

int anvil_htab_insert(anvil_htab *t, anvil_hnode *node, uint64_t hash)
{
    if (t->count + 1 > t->n_buckets && grow(t) != 0)
        return -1;
    assert(t->n_buckets && (t->n_buckets & (t->n_buckets - 1)) == 0);
    node->hash = hash;
    size_t k = slot(t, hash);
    node->next = t->buckets[k];
    t->buckets[k] = node;
    t->count++;
    return 0;
}

anvil_hnode *anvil_htab_find(const anvil_htab *t, uint64_t hash, anvil_htab_eq_fn eq,
                             const void *key)
{
    if (!t->n_buckets)
        return NULL;
    for (anvil_hnode *n = t->buckets[slot(t, hash)]; n; n = n->next)
        if (n->hash == hash && eq(n, key))
            return n;
    return NULL;
}

bool anvil_htab_remove(anvil_htab *t, anvil_hnode *node)
{
    if (!t->n_buckets)
        return false;
    for (anvil_hnode **pp = &t->buckets[slot(t, node->hash)]; *pp; pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            node->next = NULL;
            assert(t->count > 0);
            t->count--;
            return true;
        }
    }
    return false;
}

void anvil_htab_each(anvil_htab *t, void (*fn)(anvil_hnode *node, void *ctx), void *ctx)
{
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (anvil_hnode *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            fn(n, ctx);
        }
    }
}

void anvil_htab_clear(anvil_htab *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->n_buckets = 0;
    t->count = 0;
}
