/*
 * metrics.h - a tiny Prometheus metrics registry (counters, gauges,
 * histograms with labels), rendered in the text exposition format 0.0.4.
 *
 * Why: each binary runs one event-loop thread that counts requests, bytes
 * and sessions on its hot path, while scrapes (metrics_http.h) are rare and
 * happen on another thread. So updates are C11 atomics only (no locks, no
 * allocation once a child exists) and rendering reads those atomics.
 *
 * Model: a registry holds families (struct metric); a family has a kind, a
 * name, a help text and a fixed list of label names given at registration.
 * Each distinct tuple of label values is a child (struct metric_child),
 * created on first lookup and then never freed or moved until
 * metrics_free(): a child pointer may be cached and updated directly, which
 * is the cheapest hot-path form. A family without labels has exactly one
 * child (values are ignored, pass NULL).
 *
 * Cardinality is bounded: a family holds at most METRICS_MAX_CHILDREN
 * children. Lookups beyond that (or when allocating a child fails) return
 * the family's overflow child, whose every label value is "other"; it is
 * rendered only once used. A lookup whose values are all "other" returns
 * that same child, so the output never holds two series with equal labels.
 * Label values must come from a small fixed set chosen by the caller (HTTP
 * method names mapped to a known list, status codes, "in"/"out"); never pass
 * raw user input. A NULL value (or values == NULL) counts as "".
 *
 * Values:
 *   counter   - uint64, atomic_fetch_add. Counters count integral things
 *               (requests, bytes): metric_*_add() rounds v to the nearest
 *               integer and ignores negative or non-finite v.
 *   gauge     - int64, atomic add / store; v is rounded likewise (values
 *               outside the int64 range saturate, NaN is ignored).
 *   histogram - one uint64 count per bucket (atomic_fetch_add) and a double
 *               sum updated by a compare-and-swap loop on its bit pattern
 *               (uncontended with one updating thread, and exact for
 *               fractional seconds, unlike fixed-point which would overflow
 *               or round). A value v falls in the first bucket whose bound
 *               b satisfies v <= b (Prometheus "le"), else in +Inf. NaN
 *               observations are ignored. _count is rendered as the sum of
 *               the buckets so it always equals the +Inf bucket; _sum is
 *               read separately and may lag by in-flight observations.
 *
 * Thread safety: registration (metrics_counter/gauge/histogram) happens at
 * start-up from one thread, before the registry is shared. After that,
 * child lookups, updates and metrics_render() may run concurrently from
 * any threads. Each rendered number is a valid snapshot of that number;
 * different numbers may be read at slightly different instants. Creating
 * a child takes a per-family mutex (once per label tuple); looking up an
 * existing child is a lock-free linear scan with string compares.
 * metrics_free() must not race with anything.
 *
 * Names: metric names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* and not start with "__"; histograms may not use
 * the label "le"; names are unique per registry; at most METRICS_MAX_LABELS
 * labels. Histogram bounds must be finite and strictly increasing (at most
 * METRICS_MAX_BUCKETS; +Inf is implicit). A violation is a programming
 * error: registration returns NULL and the caller fails start-up.
 *
 * Rendering: "# HELP" (help escaped: \\ and \n), "# TYPE", then one line
 * per child in creation order (overflow child last); label values escaped
 * (\\ \" \n) and any invalid UTF-8 replaced by U+FFFD; histograms as
 * name_bucket{...,le="b"} (cumulative, ending with le="+Inf"), name_sum,
 * name_count. Families are rendered in registration order. Numbers are
 * formatted with "." as decimal point only in the C locale (the default
 * unless the program calls setlocale(LC_NUMERIC, ...)).
 */
#ifndef VC_METRICS_H
#define VC_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define METRICS_MAX_CHILDREN 64
#define METRICS_MAX_LABELS   8
#define METRICS_MAX_BUCKETS  32

/* A Content-Type for the rendered text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics;	     /* a registry: owns its families and their children */
struct metric;	     /* one family */
struct metric_child; /* one label tuple of a family */

/* Request latency buckets in seconds, 1 ms .. 30 s, for
 * metrics_histogram(..., metrics_latency_bounds, METRICS_LATENCY_NBOUNDS). */
#define METRICS_LATENCY_NBOUNDS 14
extern const double metrics_latency_bounds[METRICS_LATENCY_NBOUNDS];

/* NULL only when out of memory. */
struct metrics *metrics_new(void);
/* Frees the registry, its families and children; NULL is fine. Nothing may
 * use the registry (or a metrics_http serving it) concurrently or after. */
void metrics_free(struct metrics *m);

/* Registration. labels is a NULL-terminated list of label names (NULL or
 * {NULL} for none); help may be NULL. The strings are copied. Returns the
 * family, owned by the registry, or NULL on a bad name / duplicate / bad
 * bounds / out of memory (a programming or start-up error). */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       const char *const *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     const char *const *labels);
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
				 const char *const *labels, const double *bounds, size_t nbounds);

/* The child for values (one per label name, registration order), created on
 * first use. Never NULL for a valid family: see the overflow child above.
 * The pointer stays valid until metrics_free(). */
struct metric_child *metric_child(struct metric *f, const char *const *values);

/* Updates on a cached child. A call that does not fit the kind (set on a
 * counter, observe on a gauge, ...) is ignored. */
void metric_child_inc(struct metric_child *c);		     /* counter, gauge: += 1 */
void metric_child_add(struct metric_child *c, double v);     /* counter, gauge */
void metric_child_set(struct metric_child *c, double v);     /* gauge */
void metric_child_observe(struct metric_child *c, double v); /* histogram */

/* The same, looking the child up first (a short scan; fine on the hot path). */
void metric_inc(struct metric *f, const char *const *values);
void metric_add(struct metric *f, const char *const *values, double v);
void metric_set(struct metric *f, const char *const *values, double v);
void metric_observe(struct metric *f, const char *const *values, double v);

/* Appends the whole registry to out (text format 0.0.4). On failure (the
 * buf cap, E2BIG, or out of memory) returns -1 with *err set; out then holds
 * a partial rendering the caller should discard. */
int metrics_render(struct metrics *m, struct buf *out, struct err *err);

#endif
