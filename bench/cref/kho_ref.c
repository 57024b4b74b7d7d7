/* Over 500 lines: one self-contained file, built by a single gcc call from npm run bench with no build system. */
/*
 * kho_ref.c - the C reference loops for issue 10 ("Within 3x of C").
 *
 * Plain C doing the same work as khosim's core paths, so that `npm run bench`
 * can print khosim's figures as ratios of a C figure measured in the same
 * run. Built by the bench with `gcc -O2` into a temporary directory (never
 * committed); see bench/cref/README.md.
 *
 * For each workload (isolated: N order-0 folios at every other page;
 * contig: N contiguous order-0 folios) it runs, in one process:
 *
 *  1. preserve: N calls of kho_preserve_folio(phys, 0) into an append-only
 *     range tracker (the last range is extended when the folio is adjacent
 *     and has equal data, else a range is appended) - the work of
 *     shared/src/kho/track.ts's checks + fast path;
 *  2. serialize: chunk pages from a bump allocator (each checked as
 *     khoMemSerialize checks it: aligned, non-zero, not handed out twice, not
 *     preserved), then the ranges written as 4 KiB chunks of 170
 *     {start, size, data} u64s behind a {next, num_ranges} header into a
 *     buffer standing for the memory that holds them (serialize.ts);
 *  3. walk: the chunk list followed and every value validated as
 *     shared/src/kho/walk.ts validates it (chunk: aligned, inside RAM, clear
 *     of scratch, no cycle, count limit, num_ranges <= 170; range: page
 *     aligned, non-zero, no u64 overflow, inside RAM, data bits valid, folio
 *     order and alignment, ascending, not overlapping the previous, clear of
 *     scratch; afterwards no chunk page inside a preserved range), the
 *     ranges collected into an array;
 *  4. reserve: memblock_reserve + memblock_reserved_mark_noinit per range
 *     (as kernel-b's successor.ts does per block) into a sorted region array
 *     that merges with the last region, as mm/memblock.c's
 *     memblock_add_range + memblock_merge_regions and memblock_setclr_flag
 *     do for an ascending stream. As in kernel-b, the list already holds the
 *     KHO FDT, the scratch array and the early allocations (those above
 *     every preserved range, so each reserve inserts just below them: a
 *     one-element memmove, the place found from a one-entry hint, O(1) for
 *     an ascending stream); reserveTailMs is the same loop into an empty
 *     list, where every reserve is at the tail.
 *
 * Each workload is run --reps times (default 3); the JSON line carries the
 * median of each phase. Usage:
 *   kho_ref [--isolated N] [--contig N] [--reps R] [--workload isolated|contig|both]
 * Output: one JSON line on stdout.
 */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_SIZE 4096ULL
#define PAGE_SHIFT 12
#define HDR_SIZE 16
#define RANGE_SIZE 24
#define RANGES_PER_CHUNK ((PAGE_SIZE - HDR_SIZE) / RANGE_SIZE) /* 170 */
#define KHO_DATA_FOLIO 0x100ULL
#define KHO_DATA_ORDER_MASK 0xffULL
#define KHO_DATA_VALID_MASK (KHO_DATA_FOLIO | KHO_DATA_ORDER_MASK)
#define KHO_WALK_MAX_ORDER (63 - PAGE_SHIFT)
#define PHYS_ADDR_MAX UINT64_MAX
#define MEMBLOCK_NONE 0u
#define MEMBLOCK_RSRV_NOINIT 0x10u
#define MEMBLOCK_RSRV_KERN 0x20u

static void die(const char *msg, unsigned long long v)
{
	fprintf(stderr, "kho_ref: %s (0x%llx)\n", msg, v);
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ arena */

/*
 * All memory comes from one arena, mapped and populated before anything is
 * timed and reset between workloads: the kernel works in its direct map,
 * which never page-faults, and on this VM a first-touch fault costs ~18 us
 * (it would be most of the C figure). Arrays still grow by doubling and
 * copying, as memblock_double_array does.
 */
static unsigned char *arena;
static size_t arena_off, arena_size;

static void arena_init(size_t size)
{
	arena_size = size;
	arena = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (arena == MAP_FAILED)
		die("cannot map the arena", size);
	memset(arena, 0, size); /* populated for sure, whatever MAP_POPULATE did */
}

static void *aalloc(size_t n)
{
	n = (n + 63) & ~(size_t)63;
	if (arena_off + n > arena_size)
		die("arena exhausted", arena_size);
	void *p = arena + arena_off;
	arena_off += n;
	return p;
}

static void *arealloc(void *old, size_t old_n, size_t new_n)
{
	void *p = aalloc(new_n);
	if (old)
		memcpy(p, old, old_n);
	return p;
}

static void *azalloc(size_t n)
{
	void *p = aalloc(n);
	memset(p, 0, n);
	return p;
}

/*
 * A mapping never touched before (no MAP_POPULATE): each page is faulted in
 * when first written, as fresh memory is in a process (khosim's SparseMem
 * pages and walk columns). For the fresh.* figures only.
 */
static void *fresh_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("cannot map fresh memory", n);
	return p;
}

/* ------------------------------------------------------------ machine */

struct scratch {
	uint64_t addr, size;
};

struct machine {
	uint64_t ram_base, ram_size;
	struct scratch scratch[2];
	int nscratch;
};

/* ------------------------------------------------------------ tracker */

struct range {
	uint64_t start, end, data;
};

struct track {
	struct range *r;
	size_t n, cap;
	uint64_t total;
};

static void track_append(struct track *t, uint64_t start, uint64_t end, uint64_t data)
{
	if (t->n == t->cap) {
		size_t old = t->cap;
		t->cap = t->cap ? t->cap * 2 : 64;
		t->r = arealloc(t->r, old * sizeof(*t->r), t->cap * sizeof(*t->r));
		if (!t->r)
			die("out of memory (tracker)", t->cap);
	}
	t->r[t->n].start = start;
	t->r[t->n].end = end;
	t->r[t->n].data = data;
	t->n++;
	t->total += end - start;
}

/*
 * kho_preserve_folio - the tracker's hot call: argument checks, then the
 * append-only fast path. Returns 0, or -22 (EINVAL) / -17 (EEXIST, a range
 * that is not past the last one: this tracker is append-only).
 */
__attribute__((noinline)) static int kho_preserve_folio(struct track *t, uint64_t phys, unsigned int order)
{
	if (order > KHO_WALK_MAX_ORDER || order > KHO_DATA_ORDER_MASK)
		return -22;
	uint64_t size = PAGE_SIZE << order;
	if ((phys & (size - 1)) != 0 || phys + size < phys || phys + size > (1ULL << 53) - 1)
		return -22;
	uint64_t end = phys + size, data = KHO_DATA_FOLIO | order;
	if (t->n) {
		struct range *l = &t->r[t->n - 1];
		if (phys >= l->start && phys <= l->end && l->data == data) {
			if (end > l->end) {
				t->total += end - l->end;
				l->end = end;
			}
			return 0;
		}
		if (!(phys > l->end || (phys == l->end && l->data != data)))
			return -17;
	}
	track_append(t, phys, end, data);
	return 0;
}

/* Index of the last range with start <= addr, or -1. */
static long track_last_at_or_below(const struct range *r, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

static int track_intersects(const struct track *t, uint64_t addr, uint64_t size)
{
	long i = track_last_at_or_below(t->r, t->n, addr + size - 1);
	return i >= 0 && t->r[i].end > addr;
}

/* ------------------------------------------------------------ memory */

/* The pages chunks live in: [base, base + size) of phys, backed by buf. */
struct mem {
	uint64_t base, size;
	unsigned char *buf;
};

static unsigned char *mem_page(struct mem *m, uint64_t phys)
{
	if (phys < m->base || phys + PAGE_SIZE > m->base + m->size)
		die("access outside the memory buffer", phys);
	return m->buf + (phys - m->base);
}

static inline void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8); /* little-endian host (x86-64, arm64) */
}

static inline uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A page bitmap over RAM: "handed out already" for serialize, "walked already" for the walk. */
struct bitmap {
	uint64_t *w;
	size_t words;
};

static void bitmap_init(struct bitmap *b, uint64_t pages)
{
	b->words = (pages + 63) / 64;
	b->w = azalloc(b->words * 8);
	if (!b->w)
		die("out of memory (bitmap)", pages);
}

static int bitmap_test_and_set(struct bitmap *b, uint64_t bit)
{
	uint64_t m = 1ULL << (bit & 63);
	int was = (b->w[bit >> 6] & m) != 0;
	b->w[bit >> 6] |= m;
	return was;
}

/* ------------------------------------------------------------ serialize */

struct serialized {
	uint64_t metadata;
	uint64_t *chunks;
	size_t nchunks;
};

/* Chunk pages encoded before one pwrite, in the file mode (as khoMemSerialize's staging buffer). */
#define STAGE_PAGES 64

/*
 * With @fd >= 0 the chunk pages are encoded into a reused staging buffer of
 * STAGE_PAGES pages and written to @fd (chunk c at offset c * PAGE_SIZE),
 * one pwrite per full buffer, as khosim's serializer hands them to its page
 * file; otherwise each is written in place in @m.
 */
static void kho_mem_serialize(const struct machine *mc, const struct track *t, struct mem *m, uint64_t alloc_base,
			      struct serialized *out, int fd)
{
	static unsigned char stage[STAGE_PAGES * PAGE_SIZE];
	size_t nchunks = (t->n + RANGES_PER_CHUNK - 1) / RANGES_PER_CHUNK;
	uint64_t next_free = alloc_base;
	struct bitmap seen;

	bitmap_init(&seen, mc->ram_size / PAGE_SIZE);
	out->chunks = aalloc((nchunks ? nchunks : 1) * sizeof(uint64_t));
	if (!out->chunks)
		die("out of memory (chunk list)", nchunks);
	for (size_t i = 0; i < nchunks; i++) {
		uint64_t phys = next_free; /* the simple allocator: a bump pointer */
		next_free += PAGE_SIZE;
		if (phys == 0 || (phys & (PAGE_SIZE - 1)) || phys < mc->ram_base ||
		    bitmap_test_and_set(&seen, (phys - mc->ram_base) / PAGE_SIZE))
			die("allocator returned an unusable page", phys);
		if (track_intersects(t, phys, PAGE_SIZE))
			die("allocator returned a preserved page", phys);
		out->chunks[i] = phys;
	}

	size_t ri = 0;
	for (size_t c = 0; c < nchunks; c++) {
		unsigned char *p = fd >= 0 ? stage + (c % STAGE_PAGES) * PAGE_SIZE : mem_page(m, out->chunks[c]);
		size_t n = t->n - ri < RANGES_PER_CHUNK ? t->n - ri : RANGES_PER_CHUNK;
		put64(p + 0, c + 1 < nchunks ? out->chunks[c + 1] : 0);
		put64(p + 8, n);
		unsigned char *e = p + HDR_SIZE;
		for (size_t i = 0; i < n; i++, ri++, e += RANGE_SIZE) {
			const struct range *r = &t->r[ri];
			put64(e + 0, r->start);
			put64(e + 8, r->end - r->start);
			put64(e + 16, r->data);
		}
		/* The page is written whole: zero past the last entry. */
		memset(e, 0, PAGE_SIZE - HDR_SIZE - n * RANGE_SIZE);
		if (fd >= 0 && ((c + 1) % STAGE_PAGES == 0 || c + 1 == nchunks)) {
			size_t k = c % STAGE_PAGES + 1;
			if (pwrite(fd, stage, k * PAGE_SIZE, (off_t)((c + 1 - k) * PAGE_SIZE)) != (ssize_t)(k * PAGE_SIZE))
				die("short pwrite of chunk pages", c);
		}
	}
	out->nchunks = nchunks;
	out->metadata = nchunks ? out->chunks[0] : 0;
}

/* ------------------------------------------------------------ walk */

struct walked {
	struct range *r; /* end holds start + size */
	size_t n, cap;
	uint64_t *chunks;
	size_t nchunks, chunks_cap;
};

static int scratch_hit(const struct machine *mc, uint64_t start, uint64_t end)
{
	for (int i = 0; i < mc->nscratch; i++)
		if (start < mc->scratch[i].addr + mc->scratch[i].size && mc->scratch[i].addr < end)
			return 1;
	return 0;
}

/* Returns 0, or a negative error code naming the first check that failed. */
/*
 * With @fd >= 0 each chunk page is read with one pread from @fd (which holds
 * @m's pages from offset 0) into @page, as kernel-b reads memory.img;
 * otherwise it is read in place in @m.
 */
static int kho_mem_walk(const struct machine *mc, struct mem *m, uint64_t metadata, struct walked *w, int fd, unsigned char *page)
{
	const uint64_t ram_base = mc->ram_base, ram_end = mc->ram_base + mc->ram_size;
	const uint64_t max_chunks = mc->ram_size / PAGE_SIZE;
	uint64_t prev_start = 0, prev_end = 0;
	int have_prev = 0;
	struct bitmap walked_pages;
	int err = 0;

	bitmap_init(&walked_pages, max_chunks);
	for (uint64_t ptr = metadata; ptr != 0;) {
		if (ptr & (PAGE_SIZE - 1)) { err = -1; break; }                               /* CHUNK_UNALIGNED */
		if (ptr >= (1ULL << 53) || ptr < ram_base || ptr + PAGE_SIZE > ram_end) { err = -2; break; } /* CHUNK_OUTSIDE_RAM */
		if (scratch_hit(mc, ptr, ptr + PAGE_SIZE)) { err = -3; break; }                   /* CHUNK_IN_SCRATCH */
		if (bitmap_test_and_set(&walked_pages, (ptr - ram_base) / PAGE_SIZE)) { err = -4; break; } /* CHUNK_CYCLE */
		if (w->nchunks >= max_chunks) { err = -5; break; }                                 /* CHUNK_LIMIT */
		if (w->nchunks == w->chunks_cap) {
			size_t old = w->chunks_cap;
			w->chunks_cap = w->chunks_cap ? w->chunks_cap * 2 : 64;
			w->chunks = arealloc(w->chunks, old * sizeof(uint64_t), w->chunks_cap * sizeof(uint64_t));
			if (!w->chunks)
				die("out of memory (walk chunks)", w->chunks_cap);
		}
		w->chunks[w->nchunks++] = ptr;

		const unsigned char *p = mem_page(m, ptr);
		if (fd >= 0) {
			if (pread(fd, page, PAGE_SIZE, (off_t)(ptr - m->base)) != (ssize_t)PAGE_SIZE)
				die("short pread of a chunk page", ptr);
			p = page;
		}
		uint64_t num = get64(p + 8);
		if (num > RANGES_PER_CHUNK) { err = -6; break; } /* NUM_RANGES */
		const unsigned char *e = p + HDR_SIZE;
		for (uint64_t i = 0; i < num; i++, e += RANGE_SIZE) {
			uint64_t st = get64(e), sz = get64(e + 8), dt = get64(e + 16);
			if ((st | sz) & (PAGE_SIZE - 1)) { err = -7; goto out; }           /* RANGE_UNALIGNED */
			if (sz == 0) { err = -8; goto out; }                              /* RANGE_EMPTY */
			if (st + sz < st) { err = -9; goto out; }                          /* RANGE_OVERFLOW */
			uint64_t en = st + sz;
			if (st >= (1ULL << 53) || st < ram_base || st >= ram_end) { err = -10; goto out; } /* RANGE_OUTSIDE_RAM */
			if (sz >= (1ULL << 53) || en > ram_end) { err = -10; goto out; }
			if ((dt & ~KHO_DATA_VALID_MASK) || (dt != 0 && !(dt & KHO_DATA_FOLIO))) { err = -11; goto out; } /* RANGE_DATA */
			if (dt & KHO_DATA_FOLIO) {
				uint64_t order = dt & KHO_DATA_ORDER_MASK;
				if (order > KHO_WALK_MAX_ORDER) { err = -12; goto out; } /* FOLIO_ORDER */
				uint64_t fsz = PAGE_SIZE << order;
				if ((st | sz) & (fsz - 1)) { err = -13; goto out; }       /* FOLIO_UNALIGNED */
			}
			if (have_prev && st < prev_start) { err = -14; goto out; }        /* RANGE_ORDER */
			if (have_prev && st < prev_end) { err = -15; goto out; }          /* RANGE_OVERLAP */
			if (scratch_hit(mc, st, en)) { err = -16; goto out; }             /* RANGE_IN_SCRATCH */
			if (w->n == w->cap) {
				size_t old = w->cap;
				w->cap = w->cap ? w->cap * 2 : 64;
				w->r = arealloc(w->r, old * sizeof(*w->r), w->cap * sizeof(*w->r));
				if (!w->r)
					die("out of memory (walk ranges)", w->cap);
			}
			w->r[w->n].start = st;
			w->r[w->n].end = en;
			w->r[w->n].data = dt;
			w->n++;
			prev_start = st;
			prev_end = en;
			have_prev = 1;
		}
		ptr = get64(p);
	}
	/* Chunk pages become free memory: none may lie inside a preserved range. */
	for (size_t c = 0; !err && c < w->nchunks; c++) {
		long ri = track_last_at_or_below(w->r, w->n, w->chunks[c]);
		if (ri >= 0 && w->chunks[c] < w->r[ri].end)
			err = -17; /* CHUNK_IN_RANGE */
	}
out:
	return err;
}

/* ------------------------------------------------------------ memblock */

struct region {
	uint64_t base, size;
	unsigned int flags;
};

struct memblock_type {
	struct region *r;
	size_t cnt, max;
	uint64_t total_size;
	/*
	 * Index of the region the previous add or isolate touched first: the
	 * next search of an ascending stream finds its answer there or just
	 * after, in O(1). A hint only: checked before use.
	 */
	size_t hint;
};

/* Index of the first region ending above @base (cnt if none): the hint's neighbourhood, else a binary search. */
static size_t memblock_first_ending_above(const struct memblock_type *t, uint64_t base)
{
	for (size_t h = t->hint; h <= t->hint + 1 && h < t->cnt; h++)
		if (t->r[h].base + t->r[h].size > base && (h == 0 || t->r[h - 1].base + t->r[h - 1].size <= base))
			return h;
	size_t lo = 0, hi = t->cnt;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->r[mid].base + t->r[mid].size <= base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void memblock_insert_region(struct memblock_type *t, size_t idx, uint64_t base, uint64_t size, unsigned int flags)
{
	if (t->cnt == t->max) { /* memblock_double_array */
		size_t old = t->max;
		t->max = t->max ? t->max * 2 : 128;
		t->r = arealloc(t->r, old * sizeof(*t->r), t->max * sizeof(*t->r));
		if (!t->r)
			die("out of memory (memblock)", t->max);
	}
	memmove(&t->r[idx + 1], &t->r[idx], (t->cnt - idx) * sizeof(*t->r));
	t->r[idx].base = base;
	t->r[idx].size = size;
	t->r[idx].flags = flags;
	t->cnt++;
	t->total_size += size;
}

/* memblock_merge_regions over [start, end] of the array (the kernel's loop, bounded). */
static void memblock_merge_regions(struct memblock_type *t, size_t start, size_t end)
{
	size_t i = start;
	while (i < end && i + 1 < t->cnt) {
		struct region *a = &t->r[i], *b = &t->r[i + 1];
		if (a->base + a->size != b->base || a->flags != b->flags) {
			i++;
			continue;
		}
		a->size += b->size;
		memmove(b, b + 1, (t->cnt - (i + 2)) * sizeof(*b));
		t->cnt--;
		end--;
	}
}

/*
 * memblock_add_range: insert [base, base + size) with @flags, keeping parts
 * already present; then merge the touched neighbourhood.
 */
static void memblock_add_range(struct memblock_type *t, uint64_t base, uint64_t size, unsigned int flags)
{
	uint64_t end = base + size;
	size_t idx;

	if (size == 0)
		return;
	/* The ascending stream's case: at or past the end of the last region, O(1). */
	if (t->cnt == 0 || base >= t->r[t->cnt - 1].base + t->r[t->cnt - 1].size) {
		struct region *l = t->cnt ? &t->r[t->cnt - 1] : NULL;
		if (l && l->base + l->size == base && l->flags == flags) {
			l->size += size;
			t->total_size += size;
		} else {
			memblock_insert_region(t, t->cnt, base, size, flags);
		}
		t->hint = t->cnt - 1;
		return;
	}
	/*
	 * General case: fill the gaps between existing regions, as the kernel's
	 * scan does, starting at the first region ending above base (found from
	 * the hint or by binary search where the kernel scans from the first
	 * region; ends ascend too, the regions being sorted and disjoint).
	 */
	size_t first = (size_t)-1;
	for (idx = memblock_first_ending_above(t, base); idx < t->cnt && base < end; idx++) {
		struct region *r = &t->r[idx];
		uint64_t rend = r->base + r->size;
		if (r->base >= end)
			break;
		if (rend <= base)
			continue;
		if (r->base > base) {
			memblock_insert_region(t, idx, base, r->base - base, flags);
			if (first == (size_t)-1)
				first = idx;
			idx++;
		} else if (first == (size_t)-1) {
			first = idx;
		}
		base = rend < end ? rend : end;
	}
	if (base < end) {
		memblock_insert_region(t, idx, base, end - base, flags);
		if (first == (size_t)-1)
			first = idx;
		idx++;
	}
	memblock_merge_regions(t, first ? first - 1 : 0, idx < t->cnt ? idx : t->cnt - 1);
	t->hint = first;
}

/* memblock_isolate_range: split so that [base, base + size) is whole regions; returns [*s, *e). */
static void memblock_isolate_range(struct memblock_type *t, uint64_t base, uint64_t size, size_t *s, size_t *e)
{
	uint64_t end = base + size;
	*s = *e = 0;
	/*
	 * Start the scan at the first region ending above base (the array is
	 * sorted): from the hint for the ascending stream, O(1); a binary
	 * search otherwise (the kernel scans from the first region).
	 */
	size_t idx = memblock_first_ending_above(t, base);
	int started = 0;
	for (; idx < t->cnt; idx++) {
		struct region *r = &t->r[idx];
		uint64_t rbase = r->base, rend = r->base + r->size;
		if (rbase >= end)
			break;
		if (rend <= base)
			continue;
		if (rbase < base) { /* split off the part below base */
			r->base = base;
			r->size = rend - base;
			t->total_size -= base - rbase;
			memblock_insert_region(t, idx, rbase, base - rbase, r->flags);
			continue; /* look at the upper part again */
		}
		if (rend > end) { /* split off the part above end */
			r->base = end;
			r->size = rend - end;
			t->total_size -= end - rbase;
			memblock_insert_region(t, idx, rbase, end - rbase, r->flags);
			/* fallthrough: idx is now the lower part, inside the range */
		}
		if (!started) {
			*s = idx;
			started = 1;
		}
		*e = idx + 1;
	}
}

static void memblock_setclr_flag(struct memblock_type *t, uint64_t base, uint64_t size, int set, unsigned int flag)
{
	size_t s, e;
	memblock_isolate_range(t, base, size, &s, &e);
	t->hint = s;
	for (size_t i = s; i < e; i++) {
		if (set)
			t->r[i].flags |= flag;
		else
			t->r[i].flags &= ~flag;
	}
	if (e > s)
		memblock_merge_regions(t, s ? s - 1 : 0, e < t->cnt ? e : t->cnt - 1);
}

static uint64_t memblock_cap_size(uint64_t base, uint64_t size)
{
	return size < PHYS_ADDR_MAX - base ? size : PHYS_ADDR_MAX - base;
}

static void memblock_reserve(struct memblock_type *t, uint64_t base, uint64_t size)
{
	memblock_add_range(t, base, memblock_cap_size(base, size), MEMBLOCK_NONE);
}

static void memblock_reserved_mark_noinit(struct memblock_type *t, uint64_t base, uint64_t size)
{
	memblock_setclr_flag(t, base, memblock_cap_size(base, size), 1, MEMBLOCK_RSRV_NOINIT);
}

/* ------------------------------------------------------------ workloads */

struct result {
	double preserve_ns, serialize_ns, walk_ns, reserve_ns, reserve_tail_ns;
	double serialize_fresh_ns, serialize_file_ns, walk_file_fresh_ns;
	size_t calls, ranges, chunks, regions;
	uint64_t reserved_bytes, digest;
};

/*
 * One workload: @n order-0 folios from @first, every @stride bytes, on a
 * machine of @ram_size at @ram_base.
 */
static void run_workload(uint64_t ram_base, uint64_t ram_size, uint64_t first, uint64_t stride, size_t n, int fresh,
			 struct result *res)
{
	struct machine mc = { .ram_base = ram_base, .ram_size = ram_size, .nscratch = 2 };
	/*
	 * Scratch as kernel-b sees it on the isolated-1m machine: a lowmem area
	 * (here below the folios) and a global one of 0x16000000 bytes ending
	 * 0x10000000 below the end of RAM.
	 */
	const uint64_t ram_end = ram_base + ram_size;
	mc.scratch[0].addr = ram_base + 32 * (1ULL << 20);
	mc.scratch[0].size = 16 * (1ULL << 20);
	mc.scratch[1].addr = ram_end - 0x26000000ULL;
	mc.scratch[1].size = 0x16000000ULL;

	struct track t = { 0 };
	double t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		if (kho_preserve_folio(&t, first + i * stride, 0))
			die("kho_preserve_folio failed", first + i * stride);
	double t1 = now_ns();

	/* Chunk pages just past the last preserved range, backed by a buffer. */
	uint64_t last_end = t.n ? t.r[t.n - 1].end : first;
	uint64_t alloc_base = (last_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	size_t nchunks = (t.n + RANGES_PER_CHUNK - 1) / RANGES_PER_CHUNK;
	struct mem m = { .base = alloc_base, .size = (nchunks ? nchunks : 1) * PAGE_SIZE };
	m.buf = aalloc(m.size);
	if (!m.buf)
		die("out of memory (memory buffer)", m.size);
	if (alloc_base + m.size > mc.scratch[1].addr)
		die("chunks would land in scratch", alloc_base);

	struct serialized ser;
	double t2 = now_ns();
	kho_mem_serialize(&mc, &t, &m, alloc_base, &ser, -1);
	double t3 = now_ns();

	struct walked w = { 0 };
	int err = kho_mem_walk(&mc, &m, ser.metadata, &w, -1, NULL);
	double t4 = now_ns();
	if (err)
		die("walk rejected the chunk list", (unsigned long long)-err);
	if (w.n != t.n)
		die("walk found a different number of ranges", w.n);

	/*
	 * What kernel-b has reserved before the walk (untimed): the KHO FDT page
	 * and the scratch array below the folios, and its early allocations
	 * (memmap, 0x10000000 bytes, then 0x2000000 more) top-down in the global
	 * scratch, above every preserved range: so no reserve below is at the tail.
	 */
	struct memblock_type mb = { 0 };
	const uint64_t gend = mc.scratch[1].addr + mc.scratch[1].size;
	memblock_reserve(&mb, ram_base + 48 * (1ULL << 20), PAGE_SIZE);
	memblock_reserve(&mb, ram_base + 48 * (1ULL << 20) + 2 * PAGE_SIZE, PAGE_SIZE);
	memblock_add_range(&mb, gend - 0x10000000ULL, 0x10000000ULL, MEMBLOCK_RSRV_KERN);
	memblock_add_range(&mb, gend - 0x12000000ULL, 0x2000000ULL, MEMBLOCK_RSRV_KERN);
	const uint64_t pre_reserved = mb.total_size;
	const size_t pre_regions = mb.cnt;
	double t4b = now_ns();
	for (size_t i = 0; i < w.n; i++) {
		memblock_reserve(&mb, w.r[i].start, w.r[i].end - w.r[i].start);
		memblock_reserved_mark_noinit(&mb, w.r[i].start, w.r[i].end - w.r[i].start);
	}
	double t5 = now_ns();

	/*
	 * The same reserves into an empty list: every one at the tail, the O(1)
	 * append-and-merge case (reported as reserveTailMs, beside the real one).
	 */
	struct memblock_type tail = { 0 };
	double t6 = now_ns();
	for (size_t i = 0; i < w.n; i++) {
		memblock_reserve(&tail, w.r[i].start, w.r[i].end - w.r[i].start);
		memblock_reserved_mark_noinit(&tail, w.r[i].start, w.r[i].end - w.r[i].start);
	}
	double t7 = now_ns();
	if (tail.total_size != t.total || tail.cnt != mb.cnt - pre_regions)
		die("the tail-only memblock differs from the real one", tail.cnt);

	/*
	 * The fresh/file figures (@fresh runs only, after every plain run, so
	 * that their page cache writeback and unmapping never overlap a plain
	 * run's timers): serialize and walk again, paying the memory costs
	 * khosim's spans pay (not in the figures above, nor in totalMs).
	 * Serialize into chunk pages never touched before (serializeFreshMs: on
	 * this VM a first-touch fault costs ~1-25 us a page, with its state, which is why
	 * khosim does not do that), and staged into a file (serializeFileMs: as
	 * khosim's serializer hands its chunk pages to SparseMem's page file);
	 * walk reading each chunk with one pread from a file holding the chunk
	 * pages (page cache warm, as kernel-b reads memory.img) into a range
	 * array never touched before (address space for one range per RAM page,
	 * as khoMemWalk's columns).
	 */
	double t8 = 0, t9 = 0, t10 = 0, t11 = 0, t12 = 0, t13 = 0;
	if (fresh) {
	struct mem fm = { .base = alloc_base, .size = m.size };
	struct serialized fser;
	fm.buf = fresh_map(fm.size);
	t8 = now_ns();
	kho_mem_serialize(&mc, &t, &fm, alloc_base, &fser, -1);
	t9 = now_ns();
	if (memcmp(fm.buf, m.buf, m.size))
		die("serialize into fresh pages wrote different bytes", 0);
	munmap(fm.buf, fm.size);
	/* As khosim's serializer now works: staged, one pwrite per 64 chunk pages into an unlinked temporary file. */
	FILE *pf = tmpfile();
	if (!pf)
		die("cannot make a temporary file", 0);
	t12 = now_ns();
	kho_mem_serialize(&mc, &t, &m, alloc_base, &fser, fileno(pf));
	t13 = now_ns();
	for (size_t c = 0; c < ser.nchunks; c++) {
		static unsigned char back[PAGE_SIZE];
		if (pread(fileno(pf), back, PAGE_SIZE, (off_t)(c * PAGE_SIZE)) != (ssize_t)PAGE_SIZE || memcmp(back, mem_page(&m, ser.chunks[c]), PAGE_SIZE))
			die("staged serialize wrote different bytes", c);
	}
	fclose(pf);
	FILE *img = tmpfile();
	if (!img || fwrite(m.buf, 1, m.size, img) != m.size || fflush(img))
		die("cannot write the chunk pages to a temporary file", m.size);
	static unsigned char page[PAGE_SIZE];
	struct walked fw = { 0 };
	fw.cap = mc.ram_size / PAGE_SIZE;
	fw.r = fresh_map(fw.cap * sizeof(*fw.r));
	t10 = now_ns();
	err = kho_mem_walk(&mc, &m, ser.metadata, &fw, fileno(img), page);
	t11 = now_ns();
	if (err || fw.n != w.n || memcmp(fw.r, w.r, w.n * sizeof(*w.r)))
		die("the walk from a file found different ranges", fw.n);
	munmap(fw.r, fw.cap * sizeof(*fw.r));
	fclose(img);
	}

	/* FNV-1a over the chunk bytes: proof the work was done, and a check of determinism. */
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < m.size; i++)
		h = (h ^ m.buf[i]) * 1099511628211ULL;

	res->preserve_ns = t1 - t0;
	res->serialize_ns = t3 - t2;
	res->walk_ns = t4 - t3;
	res->reserve_ns = t5 - t4b;
	res->reserve_tail_ns = t7 - t6;
	res->serialize_fresh_ns = t9 - t8;
	res->serialize_file_ns = t13 - t12;
	res->walk_file_fresh_ns = t11 - t10;
	res->calls = n;
	res->ranges = t.n;
	res->chunks = ser.nchunks;
	res->regions = mb.cnt - pre_regions;
	res->reserved_bytes = mb.total_size - pre_reserved;
	res->digest = h;
	if (mb.total_size - pre_reserved != t.total)
		die("memblock reserved a different byte count than was preserved", mb.total_size);
	arena_off = 0; /* everything above is arena memory: reset for the next workload */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const char *key, struct result *r, int reps)
{
	double p[64], s[64], w[64], rv[64], rt[64], wr[64], tot[64], sf[64], sfl[64], wf[64], wrf[64];
	for (int i = 0; i < reps; i++) {
		p[i] = r[i].preserve_ns;
		s[i] = r[i].serialize_ns;
		w[i] = r[i].walk_ns;
		rv[i] = r[i].reserve_ns;
		rt[i] = r[i].reserve_tail_ns;
		wr[i] = r[i].walk_ns + r[i].reserve_ns;
		tot[i] = r[i].preserve_ns + r[i].serialize_ns + r[i].walk_ns + r[i].reserve_ns;
		sf[i] = r[i].serialize_fresh_ns;
		sfl[i] = r[i].serialize_file_ns;
		wf[i] = r[i].walk_file_fresh_ns;
		wrf[i] = r[i].walk_file_fresh_ns + r[i].reserve_ns;
	}
	double pm = median(p, reps);
	printf("\"%s\":{\"calls\":%zu,\"ranges\":%zu,\"chunks\":%zu,\"regions\":%zu,\"reservedBytes\":%llu,"
	       "\"nsPerPreserve\":%.3f,\"preserveMs\":%.3f,\"serializeMs\":%.3f,\"walkMs\":%.3f,\"reserveMs\":%.3f,\"reserveTailMs\":%.3f,"
	       "\"walkReserveMs\":%.3f,\"totalMs\":%.3f,\"serializeFreshMs\":%.3f,\"serializeFileMs\":%.3f,\"walkFileFreshMs\":%.3f,\"walkFileFreshReserveMs\":%.3f,"
	       "\"digest\":\"%016llx\"}",
	       key, r[0].calls, r[0].ranges, r[0].chunks, r[0].regions, (unsigned long long)r[0].reserved_bytes,
	       pm / (double)r[0].calls, pm / 1e6, median(s, reps) / 1e6, median(w, reps) / 1e6, median(rv, reps) / 1e6, median(rt, reps) / 1e6,
	       median(wr, reps) / 1e6, median(tot, reps) / 1e6, median(sf, reps) / 1e6, median(sfl, reps) / 1e6, median(wf, reps) / 1e6, median(wrf, reps) / 1e6,
	       (unsigned long long)r[0].digest);
}

int main(int argc, char **argv)
{
	size_t isolated = 1048576, contig = 12582912;
	int reps = 3, do_isolated = 1, do_contig = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--isolated") && i + 1 < argc)
			isolated = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--contig") && i + 1 < argc)
			contig = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--workload") && i + 1 < argc) {
			const char *w = argv[++i];
			do_isolated = !strcmp(w, "isolated") || !strcmp(w, "both");
			do_contig = !strcmp(w, "contig") || !strcmp(w, "both");
			if (!do_isolated && !do_contig) {
				fprintf(stderr, "kho_ref: --workload is isolated, contig or both\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: kho_ref [--isolated N] [--contig N] [--reps R (1..64)] [--workload isolated|contig|both]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > 64 || isolated < 1 || contig < 1) {
		fprintf(stderr, "kho_ref: --reps must be 1..64 and the counts at least 1\n");
		return 2;
	}
	const uint64_t GiB = 1ULL << 30, ram_base = 0x40000000ULL;
	/* Folios start past the kernel image and the lowmem scratch, as in khosim's machines. */
	const uint64_t first = ram_base + 64 * (1ULL << 20);
	/*
	 * Arena: the doubling arrays (tracker, walk, memblock: up to 4x their
	 * final size each, 24-byte entries, sized by the ranges of the larger
	 * workload), the chunk pages, four page bitmaps (the fresh.* serialize and
	 * walk take one each)
	 * of the largest RAM, and slack.
	 */
	size_t most = do_isolated ? isolated + 1 : 2; /* ranges; the contiguous workload coalesces into one */
	arena_init(3 * 4 * (most + 128) * 24 + ((most + 169) / 170 + 1) * PAGE_SIZE + 4 * (64 * GiB / PAGE_SIZE / 8) + (16u << 20));
	struct result ri[64], rc[64], fi[64], fc[64];
	/* The plain runs first, then the fresh/file ones (their own runs: see run_workload). */
	for (int f = 0; f < 2; f++) {
		struct result *xi = f ? fi : ri, *xc = f ? fc : rc;
		for (int i = 0; i < reps; i++) {
			/* (b) isolated-1m: 16 GiB machine, a folio every other page. */
			if (do_isolated)
				run_workload(ram_base, 16 * GiB, first, 2 * PAGE_SIZE, isolated, f, &xi[i]);
			/* (c) contig-48g: 64 GiB machine, folios back to back. */
			if (do_contig)
				run_workload(ram_base, 64 * GiB, first, PAGE_SIZE, contig, f, &xc[i]);
			if ((do_isolated && xi[i].digest != ri[0].digest) || (do_contig && xc[i].digest != rc[0].digest))
				die("repetitions wrote different chunk bytes", (unsigned long long)i);
		}
	}
	for (int i = 0; i < reps; i++) {
		ri[i].serialize_fresh_ns = fi[i].serialize_fresh_ns;
		ri[i].serialize_file_ns = fi[i].serialize_file_ns;
		ri[i].walk_file_fresh_ns = fi[i].walk_file_fresh_ns;
		rc[i].serialize_fresh_ns = fc[i].serialize_fresh_ns;
		rc[i].serialize_file_ns = fc[i].serialize_file_ns;
		rc[i].walk_file_fresh_ns = fc[i].walk_file_fresh_ns;
	}
	printf("{\"ref\":\"kho_ref\",\"reps\":%d", reps);
	if (do_isolated) {
		printf(",");
		report("isolated", ri, reps);
	}
	if (do_contig) {
		printf(",");
		report("contig", rc, reps);
	}
	printf("}\n");
	return 0;
}
