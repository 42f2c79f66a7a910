/* replay_main.c - runs a fuzz target without libFuzzer: every file of the seed corpus,
 * then N random mutations of them (bit flips, truncations, insertions, splices), with a
 * fixed seed so a failure repeats. Used by ctest so that CI exercises every parser under
 * AddressSanitizer. Usage: fuzz_x_replay ITERATIONS DIR_OR_FILE... */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT 65536

typedef struct seed {
	uint8_t *data;
	size_t len;
} seed;

static seed *seeds;
static size_t nseeds, capseeds;

/* Keep one input in memory for the mutation rounds. */
static void seed_add(const uint8_t *data, size_t len)
{
	if (nseeds == capseeds) {
		capseeds = capseeds ? capseeds * 2 : 16;
		seeds = realloc(seeds, capseeds * sizeof(*seeds));
		if (seeds == NULL)
			abort();
	}
	seeds[nseeds].data = malloc(len ? len : 1);
	if (seeds[nseeds].data == NULL)
		abort();
	memcpy(seeds[nseeds].data, data, len);
	seeds[nseeds].len = len;
	nseeds++;
}

/* Run one corpus file and remember it. */
static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return;
	uint8_t *buf = malloc(REPLAY_MAX_INPUT);
	if (buf == NULL)
		abort();
	size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	seed_add(buf, n);
	free(buf);
}

/* Run a file, or every regular file of a directory. */
static void run_path(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		run_file(path);
		return;
	}
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char full[4096];
		int w = snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
		if (w > 0 && (size_t)w < sizeof(full))
			run_file(full);
	}
	closedir(d);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: reproducible, good enough to pick mutations. */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* Make one mutated input from the seeds into out; returns its length. */
static size_t mutate(uint8_t *out)
{
	static const char interesting[] = "\0\r\n[]=;:,/*?-\"'%\\ \t\xff";
	size_t len = 0;
	if (nseeds > 0) {
		const seed *s = &seeds[rng() % nseeds];
		len = s->len;
		memcpy(out, s->data, len);
	}
	unsigned rounds = 1 + rng() % 8;
	for (unsigned r = 0; r < rounds; r++) {
		size_t pos = len ? rng() % len : 0;
		switch (rng() % 6) {
		case 0: /* flip a bit */
			if (len)
				out[pos] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1: /* truncate */
			len = pos;
			break;
		case 2: /* insert an interesting byte */
			if (len < REPLAY_MAX_INPUT) {
				memmove(out + pos + 1, out + pos, len - pos);
				out[pos] = (uint8_t)interesting[rng() % (sizeof(interesting) - 1)];
				len++;
			}
			break;
		case 3: /* duplicate a run (long lines, deep nesting) */
			if (len) {
				size_t n = 1 + rng() % (len - pos);
				if (len + n <= REPLAY_MAX_INPUT) {
					memmove(out + pos + n, out + pos, len - pos);
					len += n;
				}
			}
			break;
		case 4: /* splice in another seed */
			if (nseeds) {
				const seed *o = &seeds[rng() % nseeds];
				size_t n = o->len;
				if (pos + n > REPLAY_MAX_INPUT)
					n = REPLAY_MAX_INPUT - pos;
				memcpy(out + pos, o->data, n);
				if (pos + n > len)
					len = pos + n;
			}
			break;
		default: /* random byte */
			if (len)
				out[pos] = (uint8_t)rng();
			break;
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s ITERATIONS [DIR|FILE]...\n", argv[0]);
		return 2;
	}
	long iterations = strtol(argv[1], NULL, 10);
	for (int i = 2; i < argc; i++)
		run_path(argv[i]);
	uint8_t *buf = malloc(REPLAY_MAX_INPUT + 1);
	if (buf == NULL)
		abort();
	for (long i = 0; i < iterations; i++) {
		size_t n = mutate(buf);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%zu seeds, %ld mutations: no crash\n", nseeds, iterations);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i].data);
	free(seeds);
	free(buf);
	return 0;
}
