/*
 * fuzz_monitor.c - libFuzzer target: the monitor socket's state machine (jail/monitor.c) driven
 * by a sequence of events decoded from the input.
 *
 * Input: a first byte for maxtime (0..63 s), then events, each an opcode byte, a time step byte
 * (the clock only moves forward: 0..255 ms, times 1000 when the opcode's high bit is set), and
 * the event's own bytes: state changes, before_running with a compilation text (made valid
 * UTF-8 as the owner guarantees) and a run kind (some invalid), web tickets, timeouts, out of
 * memory, details, ticks and the client leaving.
 * Invariants (abort() on violation):
 *  - nothing is sent after close() or after the client left; close() at most once, never after
 *    the client left; clean() at most once, and never after monitor_client_gone() said true;
 *  - monitor_client_gone() says true only if clean() was never called;
 *  - every frame is non-empty valid UTF-8 (utf8_seq_len) and "close:" goes out right before
 *    close();
 *  - monitor_done() once close() was called; after it, no callback at all;
 *  - monitor_before_running() fails only for an unknown kind, with EINVAL.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

struct obs {
	bool closed, cleaned, gone, gone_true, done;
	bool last_was_close; /* the last frame sent was "close:" */
	size_t frames;
};

static void on_send(void *arg, const char *text, size_t len)
{
	struct obs *o = arg;
	check(!o->closed, "send after close");
	check(!o->gone, "send after client gone");
	check(!o->done, "send after done");
	check(len > 0 && text != NULL, "non-empty frame");
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < len;) {
		size_t l = utf8_seq_len(s + i, len - i);
		check(l > 0, "frame is valid UTF-8");
		i += l;
	}
	o->last_was_close = len == 6 && !memcmp(text, "close:", 6);
	o->frames++;
}

static void on_close(void *arg)
{
	struct obs *o = arg;
	check(!o->closed, "close twice");
	check(!o->gone, "close after client gone");
	check(!o->done, "close after done");
	check(o->last_was_close, "close: before close()");
	o->closed = true;
}

static void on_clean(void *arg, const char *why)
{
	struct obs *o = arg;
	check(!o->cleaned, "clean twice");
	check(!o->gone_true, "clean after the owner was told to clean");
	check(!o->done, "clean after done");
	check(why && *why, "clean reason");
	o->cleaned = true;
}

struct input {
	const uint8_t *p;
	size_t n;
};

static unsigned byte(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* Up to max bytes of input as valid UTF-8 text (what utf8_sanitize makes of them). */
static size_t text(struct input *in, size_t max, char *out)
{
	size_t n = byte(in) % (max + 1);
	if (n > in->n)
		n = in->n;
	size_t tail;
	size_t len = utf8_sanitize(in->p, n, (unsigned char *)out, &tail);
	in->p += n;
	in->n -= n;
	return len;
}

/* Up to max printable ASCII characters (tickets, passwords). */
static void ascii(struct input *in, size_t max, char *out)
{
	size_t n = byte(in) % (max + 1);
	size_t i = 0;
	for (; i < n && in->n; i++)
		out[i] = (char)(0x21 + byte(in) % 94);
	out[i] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct obs o = {0};
	struct mon_ops ops = {on_send, on_close, on_clean};
	int64_t now = 1000000;
	struct monitor *m = monitor_new(&ops, &o, (int64_t)(byte(&in) % 64), now);
	check(m != NULL, "monitor_new");
	static char buf[3 * 1024 + 1];
	char small[128];
	struct err e;

	while (in.n) {
		unsigned op = byte(&in);
		unsigned step = byte(&in);
		now += (int64_t)step * ((op & 0x80) ? 1000 : 1);
		o.done = o.done || monitor_done(m);
		switch (op % 10) {
		case 0:
			monitor_state(m, (enum mon_state)(byte(&in) % 6), now);
			break;
		case 1: {
			unsigned k = byte(&in) % 6; /* 4, 5: unknown kinds */
			size_t len = text(&in, 1024, buf);
			ascii(&in, 12, small);
			e = (struct err){0};
			int rc = monitor_before_running(m, (op & 0x40) ? NULL : buf,
							(op & 0x40) ? 0 : len, (enum mon_run_kind)k,
							small, now, &e);
			check(rc == (k > 3 ? -1 : 0) && (rc == 0 || e.code == EINVAL),
			      "before_running result");
			break;
		}
		case 2:
			monitor_timeout(m, now);
			break;
		case 3: {
			unsigned mib = byte(&in);
			mib |= byte(&in) << 8;
			mib |= byte(&in) << 24;
			monitor_out_of_memory(m, mib, now);
			break;
		}
		case 4:
		case 5:
			monitor_tick(m, now);
			break;
		case 6: {
			bool was_cleaned = o.cleaned;
			bool r = monitor_client_gone(m, now);
			check(!r || !was_cleaned, "client_gone true after clean");
			o.gone = true;
			o.gone_true = o.gone_true || r;
			break;
		}
		case 7:
			ascii(&in, 80, buf);
			e = (struct err){0};
			if (monitor_web_ticket(m, buf, &e) != 0)
				check(e.code == EINVAL && (!buf[0] || strlen(buf) > MON_TICKET_MAX),
				      "web ticket failure");
			break;
		case 8: {
			size_t len = text(&in, 400, buf);
			buf[len] = '\0';
			monitor_detail(m, buf);
			break;
		}
		case 9:
			for (unsigned i = byte(&in) % 8; i > 0; i--) {
				now += 100;
				monitor_tick(m, now);
			}
			break;
		}
		if (o.closed)
			check(monitor_done(m), "done once closed");
	}
	/* Let every pending deadline and pause run out. */
	for (int i = 0; i < 4; i++) {
		now += 60000LL * 1000;
		monitor_tick(m, now);
	}
	monitor_free(m);
	return 0;
}
