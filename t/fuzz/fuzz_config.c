/*
 * fuzz_config.c - libFuzzer target: vmrqd's configuration parser (backend/config.c) on any
 * file content. The input is written to a file of this process's own under /dev/shm (the parser
 * reads a path) and loaded. Run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    struct vmrqd_config cfg = { 0 };
    char err[1024];
    FILE *f;

    if (!*path)
        snprintf(path, sizeof(path), "/dev/shm/vmrq-fuzz-config.%ld", (long)getpid());
    if (!(f = fopen(path, "w")))
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    if (config_load(&cfg, path, true, err, sizeof(err)) == 0)
        config_free(&cfg);
    unlink(path);
    return 0;
}
