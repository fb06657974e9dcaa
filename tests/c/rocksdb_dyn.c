/* A program using the system librocksdb.so (Debian's librocksdb-dev):
 * opens a db, does N puts and N gets (half of them misses), prints counts.
 * Usage: rocksdb_dyn DIR N, waiting for a line on stdin before starting. */
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char *err = NULL, key[32], line[16];
	int n = argc > 2 ? atoi(argv[2]) : 100, hits = 0;
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_t *db = rocksdb_open(o, argc > 1 ? argv[1] : "/tmp/rocksdb_dyn", &err);
	if (err) { fprintf(stderr, "open: %s\n", err); return 1; }
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) return 1;
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key-%06d", i);
		rocksdb_put(db, wo, key, strlen(key), "value", 5, &err);
	}
	for (int i = 0; i < n; i++) {
		size_t len = 0;
		snprintf(key, sizeof(key), "key-%06d", i % 2 ? i : n + i);
		char *v = rocksdb_get(db, ro, key, strlen(key), &len, &err);
		if (v) { hits++; rocksdb_free(v); }
	}
	printf("{\"puts\":%d,\"gets\":%d,\"hits\":%d}\n", n, n, hits);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) {}
	rocksdb_close(db);
	return 0;
}
