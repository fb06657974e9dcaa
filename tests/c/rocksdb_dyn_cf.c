/* Column families through the system librocksdb.so (Debian's librocksdb-dev):
 * opens DIR with families default, red, blue, prints "READY" and its
 * handles (db, default, red, blue), waits for a line on stdin,
 * then makes a fixed number of calls per family and prints them as JSON,
 * then waits for a second line before closing.
 * Usage: rocksdb_dyn_cf DIR */
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RED_PUTS 40
#define BLUE_PUTS 25
#define BLUE_GETS 30
#define DEFAULT_PUTS 15

int main(int argc, char **argv)
{
	const char *names[] = { "default", "red", "blue" };
	const rocksdb_options_t *cfo[3];
	rocksdb_column_family_handle_t *cf[3];
	char *err = NULL, key[32], line[16];
	rocksdb_options_t *o = rocksdb_options_create();

	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_options_set_create_missing_column_families(o, 1);
	for (int i = 0; i < 3; i++)
		cfo[i] = o;
	rocksdb_t *db = rocksdb_open_column_families(o, argc > 1 ? argv[1] : "/tmp/rocksdb_dyn_cf",
						     3, names, cfo, cf, &err);
	if (err) { fprintf(stderr, "open: %s\n", err); return 1; }
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	printf("READY %p %p %p %p\n", (void *)db, (void *)cf[0], (void *)cf[1], (void *)cf[2]);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) return 1;
	for (int i = 0; i < RED_PUTS; i++) {
		snprintf(key, sizeof(key), "red-%06d", i);
		rocksdb_put_cf(db, wo, cf[1], key, strlen(key), "value", 5, &err);
	}
	for (int i = 0; i < BLUE_PUTS; i++) {
		snprintf(key, sizeof(key), "blue-%06d", i);
		rocksdb_put_cf(db, wo, cf[2], key, strlen(key), "value", 5, &err);
	}
	for (int i = 0; i < BLUE_GETS; i++) {
		size_t len = 0;
		snprintf(key, sizeof(key), "blue-%06d", i);
		char *v = rocksdb_get_cf(db, ro, cf[2], key, strlen(key), &len, &err);
		free(v);
	}
	for (int i = 0; i < DEFAULT_PUTS; i++) {
		snprintf(key, sizeof(key), "plain-%06d", i);
		rocksdb_put(db, wo, key, strlen(key), "value", 5, &err);
	}
	printf("{\"red\":{\"PUT\":%d},\"blue\":{\"PUT\":%d,\"GET\":%d},\"default\":{\"PUT\":%d}}\n",
	       RED_PUTS, BLUE_PUTS, BLUE_GETS, DEFAULT_PUTS);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) {}
	for (int i = 0; i < 3; i++)
		rocksdb_column_family_handle_destroy(cf[i]);
	rocksdb_close(db);
	return 0;
}
