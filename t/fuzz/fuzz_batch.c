/*
 * fuzz_batch.c - libFuzzer target: the line reader of `vmrq request --batch` (cli_batch_line(),
 * frontend-api/cli/request.c), each line of the input as a line of the file. Run by `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *line, *save = NULL;
    size_t lineno = 0;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        vmrq_request_free(cli_batch_line(line, ++lineno));
    free(text);
    return 0;
}
