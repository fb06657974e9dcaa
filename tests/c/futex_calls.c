/*
 * Ground truth for the syscall layer's futex wait counter: a single-threaded
 * process (nothing else in it makes futex calls) that, on a line on stdin,
 * makes exactly WAITS wait-family futex calls and WAKES wakes, then prints
 * "done" and waits for end of input. The waits find the futex word changed
 * and return EAGAIN at once: they are wait calls all the same.
 *
 * usage: futex_calls WAITS WAKES
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t word;

static long futex(int op, uint32_t val, uint32_t bitset)
{
	return syscall(SYS_futex, &word, op, val, NULL, NULL, bitset);
}

int main(int argc, char **argv)
{
	char line[64];
	long waits, wakes, i;

	if (argc != 3)
		return 2;
	waits = atol(argv[1]);
	wakes = atol(argv[2]);
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (i = 0; i < waits; i++) {
		/* Alternate the plain and the bitset wait; the word is 0, not 1. */
		if (i % 2)
			futex(FUTEX_WAIT_BITSET_PRIVATE, 1, FUTEX_BITSET_MATCH_ANY);
		else
			futex(FUTEX_WAIT_PRIVATE, 1, 0);
	}
	for (i = 0; i < wakes; i++)
		futex(FUTEX_WAKE_PRIVATE, 1, 0);
	printf("done\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
