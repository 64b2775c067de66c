/*  broker/filter.h - message filters evaluated by the broker
    (docs/protocol.md section 14).

    Two kinds of expression, compiled once into a tree and evaluated
    against a message's tag and properties (never its body):

    tag:  `*` (everything), `TagA`, `TagA || TagB || ...`
    sql:  a SQL92 subset over properties and the pseudo-property TAGS:
          = <> < <= > >=, AND, OR, NOT, parentheses, [NOT] IN (...),
          [NOT] BETWEEN a AND b, IS [NOT] NULL, 'strings' ('' escapes a
          quote), numbers (int, decimal, negative), TRUE, FALSE.
          SQL92 three-valued logic: a comparison with a missing property
          is UNKNOWN, NOT UNKNOWN is UNKNOWN, and a message matches only
          when the whole expression is TRUE.

    Pure code: no sockets, no store. Also a bounded LRU cache of compiled
    filters keyed by (type, expression), for the broker's PULL path.
*/
#ifndef ZR_FILTER_H_INCLUDED
#define ZR_FILTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define ZR_FILTER_EXPR_MAX 4096     //  bytes in an expression
#define ZR_FILTER_DEPTH_MAX 64      //  nesting (parentheses, NOT)
#define ZR_FILTER_CACHE_MAX 256     //  compiled filters the broker keeps

//  Three-valued results of zr_filter_eval.
#define ZR_FILTER_FALSE 0
#define ZR_FILTER_TRUE 1
#define ZR_FILTER_UNKNOWN 2

typedef struct _zr_filter_t zr_filter_t;

//  Compiles expr (len bytes, need not be NUL-terminated) of type "tag"
//  or "sql" (NULL or "" mean "tag"). Returns the filter (caller
//  destroys), or NULL with "position N: reason" written into err
//  (err_size bytes; N is the 1-based byte position of the problem).
zr_filter_t *
    zr_filter_new (const char *type, const char *expr, size_t len,
                   char *err, size_t err_size);

void
    zr_filter_destroy (zr_filter_t **self_p);

//  True when the filter matches every message (tag expression `*`), so
//  a caller may skip evaluating it.
bool
    zr_filter_all (const zr_filter_t *self);

//  Looks a property up: returns true with its value (not NUL-terminated)
//  when the message has it, false when it does not.
typedef bool (zr_filter_prop_fn) (const char *name, const char **value,
                                  size_t *len, void *arg);

//  Evaluates against a message with tag `tags` (tags_len bytes; 0 for
//  no tag) and properties read through prop (may be NULL: none).
//  Returns ZR_FILTER_TRUE, ZR_FILTER_FALSE or ZR_FILTER_UNKNOWN.
int
    zr_filter_eval (const zr_filter_t *self, const char *tags,
                    size_t tags_len, zr_filter_prop_fn *prop, void *arg);

//  Same, reading tags and props from a stored record's meta map (the
//  msgpack message map of protocol.md). Returns true only when the
//  result is TRUE; a meta map that does not decode never matches.
bool
    zr_filter_match_meta (const zr_filter_t *self, const void *meta,
                          size_t size);

//  --------------------------------------------------------------------
//  Cache of compiled filters, least recently used evicted first.

typedef struct _zr_filter_cache_t zr_filter_cache_t;

//  A cache of at most max filters (0: ZR_FILTER_CACHE_MAX).
zr_filter_cache_t *
    zr_filter_cache_new (size_t max);

void
    zr_filter_cache_destroy (zr_filter_cache_t **self_p);

//  The compiled filter for (type, expr), compiling it when not cached.
//  Returns it borrowed (valid until the next zr_filter_cache_get, which
//  may evict it), or NULL with err set as zr_filter_new does. Errors are
//  not cached.
const zr_filter_t *
    zr_filter_cache_get (zr_filter_cache_t *self, const char *type,
                         const char *expr, size_t len, char *err,
                         size_t err_size);

//  Filters compiled so far, and lookups answered from the cache.
size_t zr_filter_cache_compiled (zr_filter_cache_t *self);
size_t zr_filter_cache_hits (zr_filter_cache_t *self);

#endif
